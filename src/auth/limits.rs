//! Per-key limits (`ApiKeyRecord::limits`): ingest bytes per second and searches at once,
//! so that one tenant cannot starve the others. Each node enforces its share
//! (`node_share`): by default an equal part of the limit among the ready nodes serving that
//! traffic, so that the cluster as a whole holds the limit when requests are spread over
//! the nodes; with `auth.tenant_limits_scope: node`, the whole limit on each node.
//!
//! Ingest uses a token bucket in debt: a request is admitted while the bucket is not in
//! debt and pays for its bytes once they are read, so a body larger than a second's
//! allowance still passes, and the requests after it wait until the debt is paid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quarry_common::api_keys::TenantLimits;
use quarry_config::TenantLimitsScope;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a request was turned away, and when to come back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Throttled {
    pub retry_after: Duration,
    pub message: String,
}

struct Bucket {
    /// Bytes that may still be taken; negative while in debt.
    tokens: f64,
    refilled_at: Instant,
}

impl Bucket {
    fn refill(&mut self, rate: f64, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        // One second of allowance at most: an idle tenant does not bank a burst.
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.refilled_at = now;
    }
}

/// This node's part of `limits` when `ingest_nodes` ready nodes take ingest and
/// `search_nodes` take searches (this one among them, or about to be). Rounded up, and never
/// below one search, so that a limit smaller than the cluster still lets work through.
pub(crate) fn node_share(
    limits: TenantLimits,
    scope: TenantLimitsScope,
    ingest_nodes: usize,
    search_nodes: usize,
) -> TenantLimits {
    if scope == TenantLimitsScope::Node {
        return limits;
    }
    let share = |limit: u64, nodes: usize| limit.div_ceil(nodes.max(1) as u64);
    TenantLimits {
        ingest_bytes_per_second: limits
            .ingest_bytes_per_second
            .map(|rate| share(rate, ingest_nodes)),
        max_concurrent_searches: limits.max_concurrent_searches.map(|max| {
            u32::try_from(share(u64::from(max), search_nodes))
                .unwrap_or(u32::MAX)
                .max(1)
        }),
    }
}

#[derive(Default)]
pub(crate) struct TenantLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
    searches: Mutex<HashMap<String, (u32, Arc<Semaphore>)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl TenantLimiter {
    /// Admits an ingest request of `key_id`, or says when to retry.
    pub(crate) fn admit_ingest(
        &self,
        key_id: &str,
        limits: &TenantLimits,
    ) -> Result<(), Throttled> {
        let Some(rate) = limits.ingest_bytes_per_second.filter(|rate| *rate > 0) else {
            return Ok(());
        };
        let rate = rate as f64;
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        let bucket = buckets.entry(key_id.to_string()).or_insert(Bucket {
            tokens: rate,
            refilled_at: now,
        });
        bucket.refill(rate, now);
        if bucket.tokens >= 0.0 {
            return Ok(());
        }
        let wait = Duration::from_secs_f64(-bucket.tokens / rate);
        Err(Throttled {
            retry_after: wait.max(Duration::from_secs(1)),
            message: format!(
                "API key [{key_id}] is over its ingest limit of {rate} bytes per second on this node: retry later"
            ),
        })
    }

    /// Charges the bytes an admitted ingest request carried.
    pub(crate) fn charge_ingest(&self, key_id: &str, limits: &TenantLimits, bytes: u64) {
        let Some(rate) = limits.ingest_bytes_per_second.filter(|rate| *rate > 0) else {
            return;
        };
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        let bucket = buckets.entry(key_id.to_string()).or_insert(Bucket {
            tokens: rate as f64,
            refilled_at: now,
        });
        bucket.refill(rate as f64, now);
        bucket.tokens -= bytes as f64;
    }

    /// A slot for one search of `key_id`, held until the permit drops; `Ok(None)` when the
    /// key has no such limit.
    pub(crate) fn admit_search(
        &self,
        key_id: &str,
        limits: &TenantLimits,
    ) -> Result<Option<OwnedSemaphorePermit>, Throttled> {
        let Some(max) = limits.max_concurrent_searches else {
            return Ok(None);
        };
        let semaphore = {
            let mut searches = lock(&self.searches);
            let entry = searches
                .entry(key_id.to_string())
                .or_insert_with(|| (max, Arc::new(Semaphore::new(max as usize))));
            // A key's limit changed (it cannot today, but records are re-read): start over.
            if entry.0 != max {
                *entry = (max, Arc::new(Semaphore::new(max as usize)));
            }
            entry.1.clone()
        };
        semaphore
            .try_acquire_owned()
            .map(Some)
            .map_err(|_| Throttled {
                retry_after: Duration::from_secs(1),
                message: format!(
                    "API key [{key_id}] already runs {max} searches at once on this node, its limit: retry later"
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(bytes: Option<u64>, searches: Option<u32>) -> TenantLimits {
        TenantLimits {
            ingest_bytes_per_second: bytes,
            max_concurrent_searches: searches,
        }
    }

    #[test]
    fn ingest_runs_into_debt_then_waits_it_out() {
        let limiter = TenantLimiter::default();
        let limits = limits(Some(1_000), None);
        assert!(limiter.admit_ingest("a", &limits).is_ok());
        limiter.charge_ingest("a", &limits, 5_000);
        let throttled = limiter.admit_ingest("a", &limits).unwrap_err();
        assert!(
            throttled.retry_after >= Duration::from_secs(3),
            "{throttled:?}"
        );
        assert!(throttled.message.contains("1000 bytes per second"));
        // Another key is not affected, nor a key without a limit.
        assert!(limiter.admit_ingest("b", &limits).is_ok());
        assert!(limiter.admit_ingest("a", &TenantLimits::default()).is_ok());
    }

    #[test]
    fn a_cluster_shares_each_limit_among_the_nodes_serving_it() {
        let whole = limits(Some(1_000_000), Some(10));
        let share = node_share(whole, TenantLimitsScope::Cluster, 3, 4);
        assert_eq!(share.ingest_bytes_per_second, Some(333_334));
        assert_eq!(share.max_concurrent_searches, Some(3));
        // More nodes than searches: each still admits one.
        let share = node_share(limits(None, Some(2)), TenantLimitsScope::Cluster, 1, 5);
        assert_eq!(share.max_concurrent_searches, Some(1));
        assert_eq!(share.ingest_bytes_per_second, None);
        // A node that sees no ready peer yet (starting) takes the whole limit.
        assert_eq!(node_share(whole, TenantLimitsScope::Cluster, 0, 0), whole);
        assert_eq!(node_share(whole, TenantLimitsScope::Node, 3, 4), whole);
    }

    #[test]
    fn searches_take_slots_until_they_finish() {
        let limiter = TenantLimiter::default();
        let limits = limits(None, Some(2));
        let first = limiter.admit_search("a", &limits).unwrap();
        let _second = limiter.admit_search("a", &limits).unwrap();
        assert!(limiter.admit_search("a", &limits).is_err());
        assert!(limiter.admit_search("b", &limits).unwrap().is_some());
        drop(first);
        assert!(limiter.admit_search("a", &limits).is_ok());
        assert!(limiter
            .admit_search("a", &TenantLimits::default())
            .unwrap()
            .is_none());
    }
}
