//! Cluster membership over chitchat gossip, and later the indexing plan. Each node publishes who
//! it is (services, REST address, readiness, indexing capacity) and learns the others'; chitchat's
//! phi-accrual detector decides who is dead. See DESIGN.md, "The cluster".
//!
//! Files follow what a membership update goes through: `config` (how to join), `seeds` (whom to
//! ask first), `transport` (the bound socket handed to chitchat), `sealed_socket` (with a gossip
//! secret, that socket: `envelope_codec` turns chitchat's messages into bytes, `gossip_seal`
//! seals and opens them, `rejections` counts what does not open), `gossip_keys` (what a node
//! publishes and how peers read it), `membership` (who counts as live), `cluster` (the handle
//! the node holds), `member` (what it hands out).

mod cluster;
mod config;
mod control_loop;
mod envelope_codec;
mod error;
mod gossip_keys;
mod gossip_seal;
mod indexing_plan;
mod member;
mod membership;
mod rejections;
mod sealed_socket;
mod seeds;
mod transport;

pub use cluster::Cluster;
pub use config::ClusterConfig;
pub use control_loop::{
    acting_control_plane, current_plan, run_control_plane, LogDirectory, INDEXING_PLAN_KEY,
    ORPHAN_SHARDS, OWN_SHARDS_KEY, PLAN_VERSION,
};
pub use error::ClusterError;
pub use indexing_plan::{assign_shards, IndexingPlan, PlanIndexer, ShardKey};
pub use member::{ClusterMember, ClusterSnapshot};
