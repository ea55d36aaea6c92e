//! Counts the gossip datagrams a sealed socket drops, and says so in the log at most once every
//! ten seconds: whoever sends them (an attacker, or a node configured with another secret or
//! none) sends as fast as it likes, and a line per datagram would drown the log. The count is
//! shared with the `Cluster` handle, for metrics.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

const LOG_INTERVAL: Duration = Duration::from_secs(10);

pub(crate) struct Rejections {
    count: Arc<AtomicU64>,
    log_interval: Duration,
    last_logged: Option<Instant>,
    /// Dropped since the last warning, so that the next one says how many it stands for.
    unlogged: u64,
}

impl Rejections {
    pub fn new(count: Arc<AtomicU64>) -> Rejections {
        Rejections::with_log_interval(count, LOG_INTERVAL)
    }

    fn with_log_interval(count: Arc<AtomicU64>, log_interval: Duration) -> Rejections {
        Rejections {
            count,
            log_interval,
            last_logged: None,
            unlogged: 0,
        }
    }

    pub fn record(&mut self, from: SocketAddr, reason: &dyn fmt::Display) {
        let total = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        if self
            .last_logged
            .is_some_and(|last| now.duration_since(last) < self.log_interval)
        {
            self.unlogged += 1;
            return;
        }
        warn!(
            from = %from,
            reason = %reason,
            dropped_since_last_warning = self.unlogged,
            dropped_total = total,
            "dropped a gossip datagram not sealed with this cluster's gossip secret: nodes \
             without the same cluster_secret and cluster_id cannot join"
        );
        self.last_logged = Some(now);
        self.unlogged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_is_counted_but_logged_at_most_once_per_interval() {
        let count = Arc::new(AtomicU64::new(0));
        let from: SocketAddr = "10.0.0.1:7282".parse().unwrap();
        let mut rejections =
            Rejections::with_log_interval(count.clone(), Duration::from_secs(3600));
        rejections.record(from, &"bad tag");
        let first_warning = rejections.last_logged;
        assert!(first_warning.is_some());
        for _ in 0..99 {
            rejections.record(from, &"bad tag");
        }
        assert_eq!(count.load(Ordering::Relaxed), 100);
        assert_eq!(rejections.last_logged, first_warning);
        assert_eq!(rejections.unlogged, 99);

        // Past the interval, the next drop is logged, with the count of those it stands for.
        let mut rejections = Rejections::with_log_interval(count.clone(), Duration::ZERO);
        rejections.unlogged = 99;
        rejections.last_logged = first_warning;
        rejections.record(from, &"bad tag");
        assert_ne!(rejections.last_logged, first_warning);
        assert_eq!(rejections.unlogged, 0);
        assert_eq!(count.load(Ordering::Relaxed), 101);
    }
}
