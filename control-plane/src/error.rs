//! Why joining the cluster can fail. Each error names the setting to fix, because an operator
//! reads it in a start-up log, far from the code.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Usually another process (an older instance of this node?) holds the port.
    #[error("cannot bind gossip port {} on {addr}/UDP: {reason}", addr.port())]
    GossipBind { addr: SocketAddr, reason: String },
    #[error("cannot start gossip: {reason}")]
    GossipStart { reason: String },
    /// `tokio::time::interval` panics on a zero period, and a detection window shorter than two
    /// gossip rounds would declare healthy peers dead between two of their heartbeats.
    #[error(
        "failure detection ({failure_detection:?}) must be at least twice the gossip interval \
         ({gossip_interval:?}), and the gossip interval must not be zero"
    )]
    InvalidTimings {
        gossip_interval: Duration,
        failure_detection: Duration,
    },
    #[error("{field} must not be empty")]
    EmptyIdentifier { field: &'static str },
    #[error("gossip_secret must not be empty: leave it out to gossip in the clear")]
    EmptyGossipSecret,
}
