//! Gossip sealed with a secret, over real UDP on 127.0.0.1: nodes sharing the secret form a
//! cluster as plain ones do, and nodes with another secret or none never become members of it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use quarry_config::Service;
use quarry_control_plane::{Cluster, ClusterConfig};

mod common;
use common::{
    all_ready, bounded, config, join_with, live_ids, node_ids, seed, wait_until, CONVERGENCE, POLL,
};

const SECRET: &str = "5f0d8c2e7a914b3c9e61d2f4a8b07c35";

fn sealed(node_id: &str, seeds: &[String], secret: Option<&str>) -> ClusterConfig {
    ClusterConfig {
        gossip_secret: secret.map(str::to_string),
        ..config("main", node_id, &[Service::Searcher], seeds)
    }
}

async fn join_sealed(node_id: &str, seeds: &[String]) -> Cluster {
    join_with(sealed(node_id, seeds, Some(SECRET))).await
}

#[tokio::test]
async fn three_nodes_with_the_same_secret_form_a_cluster() {
    bounded(async {
        let a = join_sealed("a", &[]).await;
        let b = join_sealed("b", &seed(&a)).await;
        let c = join_sealed("c", &seed(&a)).await;
        for node in [&a, &b, &c] {
            wait_until("three live ready nodes", CONVERGENCE, || {
                all_ready(node, &["a", "b", "c"])
            })
            .await;
        }
        a.set_self_key("indexing_plan", "version-1");
        for node in [&b, &c] {
            wait_until("a's key reaches the others", CONVERGENCE, || {
                node.member_key("a", "indexing_plan").as_deref() == Some("version-1")
            })
            .await;
        }
        // Every datagram between holders of the secret opened.
        for node in [&a, &b, &c] {
            assert_eq!(node.rejected_gossip_datagrams(), 0);
        }
        for node in [a, b, c] {
            node.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn nodes_with_another_secret_or_none_never_join_a_secured_cluster() {
    bounded(async {
        let a = join_sealed("a", &[]).await;
        let b = join_sealed("b", &seed(&a)).await;
        let seeds = [seed(&a), seed(&b)].concat();
        let other_secret =
            join_with(sealed("x", &seeds, Some("another secret, same cluster id"))).await;
        let no_secret = join_with(sealed("y", &seeds, None)).await;
        // c holds the secret and also names the strangers as seeds, so sealed datagrams go to
        // them too.
        let c = join_sealed(
            "c",
            &[seed(&a), seed(&other_secret), seed(&no_secret)].concat(),
        )
        .await;
        for node in [&a, &b, &c] {
            wait_until("a, b and c see each other", CONVERGENCE, || {
                live_ids(node) == ["a", "b", "c"]
            })
            .await;
        }
        // Thirty gossip rounds: each stranger sends every round to one of its seeds, and c to
        // one of its own.
        let watch_for = Duration::from_secs(3);
        let start = Instant::now();
        while start.elapsed() < watch_for {
            for node in [&a, &b, &c] {
                let snapshot = node.snapshot();
                assert_eq!(node_ids(&snapshot.live_nodes), ["a", "b", "c"]);
                assert!(snapshot.dead_nodes.is_empty());
            }
            for (stranger, id) in [(&other_secret, "x"), (&no_secret, "y")] {
                assert_eq!(live_ids(stranger), [id]);
                assert!(stranger.snapshot().dead_nodes.is_empty());
            }
            tokio::time::sleep(POLL).await;
        }
        assert!(a.rejected_gossip_datagrams() > 0);
        assert!(b.rejected_gossip_datagrams() > 0);
        // c's datagrams do not open with the other key either.
        assert!(other_secret.rejected_gossip_datagrams() > 0);
        // chitchat reads for itself on a node without a secret, and counts nothing.
        assert_eq!(no_secret.rejected_gossip_datagrams(), 0);
        for node in [a, b, c, other_secret, no_secret] {
            node.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn garbage_is_counted_and_does_not_stop_sealed_gossip() {
    bounded(async {
        let a = join_sealed("a", &[]).await;
        let target: SocketAddr = a.self_member().gossip_address.parse().unwrap();
        let magic = 45_139u16.to_le_bytes();
        let datagrams: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![1],
            vec![1, 0],
            vec![1, 2, 3],
            vec![1; 29],
            vec![1; 30],
            vec![1; 65_507],
            vec![2; 100],
            // A plain chitchat SYN header.
            vec![magic[0], magic[1], 1, 0, 0, 0],
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        ];
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for datagram in &datagrams {
            sender.send_to(datagram, target).unwrap();
        }
        let expected = datagrams.len() as u64;
        wait_until("every datagram counted", CONVERGENCE, || {
            a.rejected_gossip_datagrams() == expected
        })
        .await;

        let b = join_sealed("b", &seed(&a)).await;
        for node in [&a, &b] {
            wait_until("b joins despite the garbage", CONVERGENCE, || {
                all_ready(node, &["a", "b"])
            })
            .await;
        }
        assert_eq!(a.rejected_gossip_datagrams(), expected);
        assert_eq!(b.rejected_gossip_datagrams(), 0);
        for node in [a, b] {
            node.shutdown().await;
        }
    })
    .await;
}

/// Enough state that chitchat fills whole datagrams, and has to send several, to bring a new
/// node up to date. The values are random characters out of 64, which zstd cannot squeeze below
/// 6 bits of 8: twice a datagram of them is still one and a half compressed.
#[tokio::test]
async fn a_state_larger_than_a_datagram_gossips_sealed() {
    const KEYS: usize = 800;
    const VALUE_LEN: usize = 200;
    bounded(async {
        let a = join_sealed("a", &[]).await;
        let mut random = Xorshift(0x9e37_79b9_7f4a_7c15);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let values: Vec<(String, String)> = (0..KEYS)
            .map(|index| {
                let value = (0..VALUE_LEN)
                    .map(|_| char::from(alphabet[(random.next() % 64) as usize]))
                    .collect();
                (format!("large-{index:04}"), value)
            })
            .collect();
        let raw_len: usize = values
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum();
        assert!(raw_len > 2 * 65_507, "{raw_len} bytes");
        for (key, value) in &values {
            a.set_self_key(key, value);
        }

        let b = join_sealed("b", &seed(&a)).await;
        wait_until("b holds all of a's keys", CONVERGENCE, || {
            values
                .iter()
                .all(|(key, value)| b.member_key("a", key).as_deref() == Some(value))
        })
        .await;
        wait_until("a and b ready", CONVERGENCE, || all_ready(&b, &["a", "b"])).await;
        assert_eq!(a.rejected_gossip_datagrams(), 0);
        assert_eq!(b.rejected_gossip_datagrams(), 0);
        for node in [a, b] {
            node.shutdown().await;
        }
    })
    .await;
}

/// Random enough values, the same on every run.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
