//! Failed authentication attempts (wrong credentials, not missing ones), per client
//! address: past `max_failures` (`auth.max_failed_attempts_per_minute`, default
//! `DEFAULT_MAX_FAILURES`) in a window of `WINDOW`, an address gets 429 for the rest
//! of the window without its credentials being looked at, so that guessing keys costs an
//! attacker time and fills no log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) const DEFAULT_MAX_FAILURES: u32 = 50;
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; past it, the oldest windows are forgotten first.
const MAX_ADDRESSES: usize = 100_000;

pub(crate) struct FailedAttempts {
    max_failures: u32,
    by_address: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailedAttempts {
    pub(crate) fn new(max_failures: u32) -> FailedAttempts {
        FailedAttempts {
            max_failures,
            by_address: Mutex::default(),
        }
    }

    /// How long `address` must wait before trying again; `None` if it may try now.
    pub(crate) fn locked_out(&self, address: IpAddr) -> Option<Duration> {
        let by_address = self
            .by_address
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (started, failures) = by_address.get(&address)?;
        let remaining = WINDOW.checked_sub(started.elapsed())?;
        (*failures >= self.max_failures).then_some(remaining)
    }

    pub(crate) fn record_failure(&self, address: IpAddr) {
        let mut by_address = self
            .by_address
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if by_address.len() >= MAX_ADDRESSES {
            by_address.retain(|_, (started, _)| started.elapsed() < WINDOW);
            if by_address.len() >= MAX_ADDRESSES {
                by_address.clear();
            }
        }
        let entry = by_address.entry(address).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_locked_out_after_too_many_failures() {
        let attempts = FailedAttempts::new(DEFAULT_MAX_FAILURES);
        let attacker: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..DEFAULT_MAX_FAILURES - 1 {
            attempts.record_failure(attacker);
        }
        assert!(attempts.locked_out(attacker).is_none());
        attempts.record_failure(attacker);
        let wait = attempts.locked_out(attacker).unwrap();
        assert!(wait > Duration::from_secs(50) && wait <= WINDOW, "{wait:?}");
        assert!(attempts.locked_out(other).is_none());
    }
}
