//! The `quarry` binary's library: CLI, node wiring and the HTTP APIs.

mod auth;
mod bulk_ids;
pub mod cli;
pub mod demo;
pub mod demo_logs;
pub(crate) mod index_service;
mod index_templates;
mod loki_push;
mod metrics;
pub mod node;
mod otlp_logs;
mod rest;
mod ui;

pub use index_service::IndexService;
pub use rest::access_rules;
