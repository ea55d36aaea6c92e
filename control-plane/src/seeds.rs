//! Which configured peer seeds to gossip with. A shared seed list usually names every node,
//! this one included, and gossiping with oneself only wastes a round, so seeds that resolve to
//! this node are dropped. A seed that does not resolve yet is kept: chitchat resolves hostnames
//! again every minute, and in a starting cluster (docker compose, a Kubernetes headless service)
//! the other nodes' names often appear after this node starts.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::lookup_host;
use tracing::{debug, warn};

/// A resolver that hangs must not hang the node's start.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The addresses that reach this node's gossip socket.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OwnGossipAddrs {
    pub advertised: SocketAddr,
    pub bound: SocketAddr,
}

impl OwnGossipAddrs {
    fn contains(&self, addr: SocketAddr) -> bool {
        addr == self.advertised
            || addr == self.bound
            // A socket bound to 0.0.0.0 also answers on loopback.
            || (self.bound.ip().is_unspecified()
                && addr.ip().is_loopback()
                && addr.port() == self.bound.port())
    }
}

/// The seeds worth handing to chitchat, in configuration order, without duplicates.
pub(crate) async fn usable_seeds(seeds: &[String], own: OwnGossipAddrs) -> Vec<String> {
    let mut usable: Vec<String> = Vec::new();
    for seed in seeds {
        let seed = seed.trim();
        if seed.is_empty() || usable.iter().any(|kept| kept == seed) {
            continue;
        }
        match tokio::time::timeout(LOOKUP_TIMEOUT, lookup_host(seed)).await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                // All, not any: a headless service's name resolves to every node, this one
                // included, and is still the way to reach the others.
                if !addrs.is_empty() && addrs.iter().all(|addr| own.contains(*addr)) {
                    debug!(seed, "ignoring peer seed that is this node");
                    continue;
                }
            }
            Ok(Err(error)) => {
                warn!(seed, %error, "cannot resolve peer seed (expected host:port); gossip will retry it");
            }
            Err(_) => {
                warn!(seed, timeout = ?LOOKUP_TIMEOUT, "peer seed lookup timed out; gossip will retry it");
            }
        }
        usable.push(seed.to_string());
    }
    usable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(seeds: &[&str]) -> Vec<String> {
        seeds.iter().map(|seed| seed.to_string()).collect()
    }

    #[tokio::test]
    async fn own_addresses_are_dropped_and_unresolvable_seeds_kept() {
        let own = OwnGossipAddrs {
            advertised: "10.0.0.5:7280".parse().unwrap(),
            bound: "127.0.0.1:7280".parse().unwrap(),
        };
        let seeds = strings(&[
            "10.0.0.5:7280",
            "127.0.0.1:7280",
            "10.0.0.6:7280",
            " 10.0.0.6:7280 ",
            "",
            "10.0.0.5:7281",
            "no-port-given",
        ]);
        assert_eq!(
            usable_seeds(&seeds, own).await,
            strings(&["10.0.0.6:7280", "10.0.0.5:7281", "no-port-given"])
        );
    }

    #[tokio::test]
    async fn a_node_bound_to_all_interfaces_is_also_its_loopback() {
        let own = OwnGossipAddrs {
            advertised: "10.0.0.5:7280".parse().unwrap(),
            bound: "0.0.0.0:7280".parse().unwrap(),
        };
        let seeds = strings(&["127.0.0.1:7280", "127.0.0.1:7281", "10.0.0.7:7280"]);
        assert_eq!(
            usable_seeds(&seeds, own).await,
            strings(&["127.0.0.1:7281", "10.0.0.7:7280"])
        );
    }
}
