//! What a node needs to know to join the cluster, and how our two timing knobs map onto
//! chitchat's phi-accrual failure detector (which has five, none of them a duration to wait).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use chitchat::FailureDetectorConfig;
use quarry_config::Service;

use crate::error::ClusterError;

#[derive(Clone)]
pub struct ClusterConfig {
    /// Nodes gossiping with another cluster id are refused, so two clusters can share a network.
    pub cluster_id: String,
    pub node_id: String,
    /// Start time in milliseconds since the epoch, or any value that grows across restarts of
    /// the same node id: a restarted node is a new generation.
    pub generation: u64,
    /// UDP bind address. Port 0 picks a free port, which is then advertised.
    pub gossip_listen_addr: SocketAddr,
    /// What peers dial. A port of 0 is replaced by the port actually bound.
    pub gossip_advertise_addr: SocketAddr,
    /// `host:port` other nodes use for REST and `/internal/v1`.
    pub rest_advertise_addr: String,
    pub enabled_services: Vec<Service>,
    /// `host:port` of nodes to gossip with first; hostnames are resolved again every minute by
    /// chitchat, so seeds may come up after this node.
    pub peer_seeds: Vec<String>,
    /// How much indexing work this node takes relative to others, e.g. its number of cores.
    pub indexing_capacity: u32,
    /// 500 ms for nodes; tests use 100 ms.
    pub gossip_interval: Duration,
    /// How long a peer may stay silent before it is declared dead: a few seconds.
    pub failure_detection: Duration,
    /// How long a dead node stays listed in `dead_nodes` (and its state kept) before it is
    /// forgotten. An hour lets operators see what died; tests use tens of seconds.
    pub dead_node_grace_period: Duration,
    /// Seals every gossip datagram (AES-256-GCM, with a key derived from this secret and the
    /// cluster id), because plain gossip lets anyone who reaches the UDP port read the cluster's
    /// state, or join it as an indexer and be given shards. Nodes only gossip with nodes of the
    /// same secret: with another one, or none, they are not members of each other's cluster.
    /// Nodes take their `cluster_secret`. None gossips in the clear, as a single-node demo may.
    pub gossip_secret: Option<String>,
}

/// By hand, to keep the secret out of logs.
impl fmt::Debug for ClusterConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ClusterConfig")
            .field("cluster_id", &self.cluster_id)
            .field("node_id", &self.node_id)
            .field("generation", &self.generation)
            .field("gossip_listen_addr", &self.gossip_listen_addr)
            .field("gossip_advertise_addr", &self.gossip_advertise_addr)
            .field("rest_advertise_addr", &self.rest_advertise_addr)
            .field("enabled_services", &self.enabled_services)
            .field("peer_seeds", &self.peer_seeds)
            .field("indexing_capacity", &self.indexing_capacity)
            .field("gossip_interval", &self.gossip_interval)
            .field("failure_detection", &self.failure_detection)
            .field("dead_node_grace_period", &self.dead_node_grace_period)
            .field(
                "gossip_secret",
                &self.gossip_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl ClusterConfig {
    pub(crate) fn validate(&self) -> Result<(), ClusterError> {
        if self.cluster_id.is_empty() {
            return Err(ClusterError::EmptyIdentifier {
                field: "cluster_id",
            });
        }
        if self.node_id.is_empty() {
            return Err(ClusterError::EmptyIdentifier { field: "node_id" });
        }
        // Anyone can derive the key of an empty secret.
        if self
            .gossip_secret
            .as_deref()
            .is_some_and(|secret| secret.trim().is_empty())
        {
            return Err(ClusterError::EmptyGossipSecret);
        }
        if self.gossip_interval.is_zero() || self.failure_detection < self.gossip_interval * 2 {
            return Err(ClusterError::InvalidTimings {
                gossip_interval: self.gossip_interval,
                failure_detection: self.failure_detection,
            });
        }
        Ok(())
    }

    /// chitchat's phi is the time since a peer's last heartbeat divided by the mean interval
    /// between its heartbeats, and a peer is dead once phi passes the threshold. A live peer's
    /// heartbeat reaches us about once per gossip round (more often in small clusters, where
    /// every node gossips with every other), so a threshold of `failure_detection /
    /// gossip_interval` declares a peer dead after at most about `failure_detection` of silence.
    pub(crate) fn failure_detector_config(&self) -> FailureDetectorConfig {
        FailureDetectorConfig {
            phi_threshold: self.failure_detection.as_secs_f64()
                / self.gossip_interval.as_secs_f64(),
            // chitchat's default: a mean over the last thousand heartbeats.
            sampling_window_size: 1_000,
            // A longer gap means the peer was already declared dead; counting it would stretch
            // the mean and slow the detection of its next death.
            max_interval: self.failure_detection,
            // The prior of the smoothed mean: what a peer's heartbeat interval should be.
            initial_interval: self.gossip_interval,
            dead_node_grace_period: self.dead_node_grace_period,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClusterConfig {
        ClusterConfig {
            cluster_id: "cluster".to_string(),
            node_id: "node".to_string(),
            generation: 1,
            gossip_listen_addr: ([127, 0, 0, 1], 0).into(),
            gossip_advertise_addr: ([127, 0, 0, 1], 0).into(),
            rest_advertise_addr: "127.0.0.1:7280".to_string(),
            enabled_services: vec![Service::Searcher],
            peer_seeds: Vec::new(),
            indexing_capacity: 2,
            gossip_interval: Duration::from_millis(500),
            failure_detection: Duration::from_secs(5),
            dead_node_grace_period: Duration::from_secs(3600),
            gossip_secret: None,
        }
    }

    #[test]
    fn phi_threshold_is_failure_detection_in_gossip_rounds() {
        let detector = config().failure_detector_config();
        assert_eq!(detector.phi_threshold, 10.0);
        assert_eq!(detector.initial_interval, Duration::from_millis(500));
        assert_eq!(detector.max_interval, Duration::from_secs(5));
        assert_eq!(detector.dead_node_grace_period, Duration::from_secs(3600));
    }

    #[test]
    fn timings_that_would_flap_or_panic_are_refused() {
        for (gossip_ms, detection_ms, valid) in [
            (500, 5_000, true),
            (500, 1_000, true),
            (500, 999, false),
            (0, 5_000, false),
        ] {
            let config = ClusterConfig {
                gossip_interval: Duration::from_millis(gossip_ms),
                failure_detection: Duration::from_millis(detection_ms),
                ..config()
            };
            assert_eq!(
                config.validate().is_ok(),
                valid,
                "{gossip_ms} ms / {detection_ms} ms"
            );
        }
        let error = ClusterConfig {
            gossip_interval: Duration::from_millis(500),
            failure_detection: Duration::from_millis(600),
            ..config()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "failure detection (600ms) must be at least twice the gossip interval (500ms), and \
             the gossip interval must not be zero"
        );
    }

    #[test]
    fn empty_identifiers_are_refused() {
        let error = ClusterConfig {
            node_id: String::new(),
            ..config()
        }
        .validate()
        .unwrap_err();
        assert_eq!(error.to_string(), "node_id must not be empty");
        let error = ClusterConfig {
            cluster_id: String::new(),
            ..config()
        }
        .validate()
        .unwrap_err();
        assert_eq!(error.to_string(), "cluster_id must not be empty");
        let error = ClusterConfig {
            gossip_secret: Some(" ".to_string()),
            ..config()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "gossip_secret must not be empty: leave it out to gossip in the clear"
        );
    }

    #[test]
    fn the_gossip_secret_stays_out_of_debug_output() {
        let config = ClusterConfig {
            gossip_secret: Some("hunter2".to_string()),
            ..config()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("gossip_secret: Some(\"<redacted>\")"),
            "{debug}"
        );
    }
}
