//! Cluster membership over chitchat gossip, and later the indexing plan. Each node publishes who
//! it is (services, REST address, readiness, indexing capacity) and learns the others'; chitchat's
//! phi-accrual detector decides who is dead. See DESIGN.md, "The cluster".
//!
//! Files follow what a membership update goes through: `config` (how to join), `seeds` (whom to
//! ask first), `transport` (the bound socket handed to chitchat), `gossip_keys` (what a node
//! publishes and how peers read it), `membership` (who counts as live), `cluster` (the handle
//! the node holds), `member` (what it hands out).

mod cluster;
mod config;
mod error;
mod gossip_keys;
mod member;
mod membership;
mod seeds;
mod transport;

pub use cluster::Cluster;
pub use config::ClusterConfig;
pub use error::ClusterError;
pub use member::{ClusterMember, ClusterSnapshot};
