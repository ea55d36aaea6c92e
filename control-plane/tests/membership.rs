//! Membership over real UDP gossip on 127.0.0.1. Every node binds port 0 and advertises the port
//! it got, so tests run in parallel without port clashes. Gossip runs every 100 ms and a silent
//! node is dead after 2 s, so each test settles in a few seconds; each is bounded by a timeout.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use quarry_config::Service;
use quarry_control_plane::{Cluster, ClusterConfig, ClusterError, ClusterMember};

mod common;
use common::{
    all_ready, bounded, config, join, live_ids, node_ids, seed, wait_until, CONVERGENCE,
    FAILURE_DETECTION, GOSSIP_INTERVAL, POLL,
};

/// Gossip rounds, the refresher's tick and our polling on top of the detector's own bound.
const DETECTION_SLACK: Duration = Duration::from_secs(1);

#[tokio::test]
async fn three_nodes_join_through_one_seed_and_see_each_other() {
    bounded(async {
        let a = join(
            "main",
            "a",
            &[Service::Searcher, Service::ControlPlane],
            &[],
        )
        .await;
        let b = join("main", "b", &[Service::Indexer], &seed(&a)).await;
        let c = join(
            "main",
            "c",
            &[Service::Indexer, Service::Searcher],
            &seed(&a),
        )
        .await;
        for node in [&a, &b, &c] {
            assert_ne!(node.self_member().gossip_address, "127.0.0.1:0");
            wait_until("three live ready nodes", CONVERGENCE, || {
                all_ready(node, &["a", "b", "c"])
            })
            .await;
        }
        let expected: Vec<ClusterMember> =
            [&a, &b, &c].iter().map(|node| node.self_member()).collect();
        assert_eq!(
            expected[0].enabled_services,
            [Service::Searcher, Service::ControlPlane]
        );
        assert_eq!(expected[1].rest_address, "b.example:7280");
        assert_eq!(expected[2].indexing_capacity, 4);
        for node in [&a, &b, &c] {
            let snapshot = node.snapshot();
            assert_eq!(snapshot.cluster_id, "main");
            assert_eq!(snapshot.live_nodes, expected);
            assert_eq!(snapshot.ready_nodes, expected);
            assert!(snapshot.dead_nodes.is_empty());
            let members = node.subscribe();
            wait_until("subscribers see the same members", CONVERGENCE, || {
                *members.borrow() == expected
            })
            .await;
        }

        // Keys beyond membership travel too: the control plane will publish its plan this way.
        a.set_self_key("indexing_plan", "version-1");
        for node in [&b, &c] {
            wait_until("a's key reaches the others", CONVERGENCE, || {
                node.member_key("a", "indexing_plan").as_deref() == Some("version-1")
            })
            .await;
        }
        for node in [a, b, c] {
            node.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn ready_members_with_filters_by_service_and_readiness() {
    bounded(async {
        let a = join("main", "a", &[Service::Searcher], &[]).await;
        let b = Cluster::join(config("main", "b", &[Service::Searcher], &seed(&a)))
            .await
            .unwrap();
        let c = join("main", "c", &[Service::Indexer], &seed(&a)).await;
        let mut changes = a.subscribe();
        wait_until("three live nodes", CONVERGENCE, || {
            live_ids(&a) == ["a", "b", "c"] && a.live_members()[2].ready
        })
        .await;
        // b has not said it is ready.
        assert_eq!(node_ids(&a.ready_members_with(Service::Searcher)), ["a"]);
        assert_eq!(node_ids(&a.ready_members_with(Service::Indexer)), ["c"]);
        assert!(a.ready_members_with(Service::Metastore).is_empty());
        assert_eq!(node_ids(&a.snapshot().ready_nodes), ["a", "c"]);

        changes.borrow_and_update();
        b.set_ready(true);
        wait_until("b ready as seen by a", CONVERGENCE, || {
            node_ids(&a.ready_members_with(Service::Searcher)) == ["a", "b"]
        })
        .await;
        wait_until("subscribers hear of readiness", CONVERGENCE, || {
            changes.has_changed().unwrap_or(false)
        })
        .await;

        a.set_ready(false);
        assert_eq!(node_ids(&a.ready_members_with(Service::Searcher)), ["b"]);
        wait_until("a not ready as seen by c", CONVERGENCE, || {
            node_ids(&c.ready_members_with(Service::Searcher)) == ["b"]
        })
        .await;
        for node in [a, b, c] {
            node.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_node_of_another_cluster_is_never_admitted() {
    bounded(async {
        let a = join("main", "a", &[Service::Searcher], &[]).await;
        let b = join("main", "b", &[Service::Searcher], &seed(&a)).await;
        let seeds = [seed(&a), seed(&b)].concat();
        let stranger = join("other", "x", &[Service::Searcher], &seeds).await;
        for node in [&a, &b] {
            wait_until("a and b see each other", CONVERGENCE, || {
                live_ids(node) == ["a", "b"]
            })
            .await;
        }
        // Long enough for dozens of the stranger's gossip rounds to be refused.
        let watch_for = Duration::from_secs(3);
        let start = Instant::now();
        while start.elapsed() < watch_for {
            for node in [&a, &b] {
                let snapshot = node.snapshot();
                assert_eq!(node_ids(&snapshot.live_nodes), ["a", "b"]);
                assert!(snapshot.dead_nodes.is_empty());
            }
            assert_eq!(live_ids(&stranger), ["x"]);
            assert!(stranger.snapshot().dead_nodes.is_empty());
            tokio::time::sleep(POLL).await;
        }
        for node in [a, b, stranger] {
            node.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_node_that_leaves_is_listed_dead_within_the_detection_bound() {
    bounded(async {
        let a = join("main", "a", &[Service::Searcher], &[]).await;
        let b = join("main", "b", &[Service::Searcher], &seed(&a)).await;
        let c = join("main", "c", &[Service::Indexer], &seed(&a)).await;
        for node in [&a, &b, &c] {
            wait_until("three live ready nodes", CONVERGENCE, || {
                all_ready(node, &["a", "b", "c"])
            })
            .await;
        }
        let c_member = c.self_member();
        c.shutdown().await;
        let start = Instant::now();
        for node in [&a, &b] {
            wait_until("c listed dead", CONVERGENCE, || {
                let snapshot = node.snapshot();
                node_ids(&snapshot.live_nodes) == ["a", "b"]
                    && node_ids(&snapshot.dead_nodes) == ["c"]
            })
            .await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed <= FAILURE_DETECTION + DETECTION_SLACK,
            "c took {elapsed:?} to be declared dead"
        );
        let dead = &a.snapshot().dead_nodes[0];
        assert_eq!(
            dead,
            &ClusterMember {
                ready: false,
                ..c_member
            }
        );
        assert!(a.ready_members_with(Service::Indexer).is_empty());
        for node in [a, b] {
            node.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_restarted_node_replaces_its_previous_generation() {
    bounded(async {
        let a = join("main", "a", &[Service::Searcher], &[]).await;
        let b_first = join("main", "b", &[Service::Indexer], &seed(&a)).await;
        wait_until("b joins", CONVERGENCE, || all_ready(&a, &["a", "b"])).await;

        // A crash: no shutdown, the process and its socket are gone. The new process listens
        // on another port, as a rescheduled container would.
        drop(b_first);
        let b_second = Cluster::join(ClusterConfig {
            generation: 2,
            ..config("main", "b", &[Service::Indexer], &seed(&a))
        })
        .await
        .unwrap();
        b_second.set_ready(true);
        wait_until("the new generation is live", CONVERGENCE, || {
            let live = a.live_members();
            let unique: HashSet<String> = node_ids(&live).into_iter().collect();
            assert_eq!(unique.len(), live.len(), "a node id listed twice: {live:?}");
            live.iter()
                .any(|member| member.node_id == "b" && member.generation == 2 && member.ready)
        })
        .await;
        wait_until("the old generation is dead", CONVERGENCE, || {
            let snapshot = a.snapshot();
            snapshot
                .dead_nodes
                .iter()
                .any(|member| member.node_id == "b" && member.generation == 1)
        })
        .await;
        // Past the detection bound the old generation must still not come back.
        tokio::time::sleep(FAILURE_DETECTION).await;
        let live = a.live_members();
        assert_eq!(node_ids(&live), ["a", "b"]);
        assert_eq!(live[1].generation, 2);
        assert_eq!(node_ids(&a.ready_members_with(Service::Indexer)), ["b"]);
        for node in [a, b_second] {
            node.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn garbage_datagrams_do_not_stop_gossip() {
    bounded(async {
        let a = join("main", "a", &[Service::Searcher], &[]).await;
        let target: SocketAddr = a.self_member().gossip_address.parse().unwrap();
        // chitchat's header: magic number 45139 (little endian), protocol version, message type.
        let magic = 45_139u16.to_le_bytes();
        let header = |version: u8, message_type: u8| [magic[0], magic[1], version, message_type];
        let mut datagrams: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![0],
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            vec![0xff; 60_000],
            magic.to_vec(),
            header(9, 0).to_vec(),
            header(0, 200).to_vec(),
        ];
        // Each message type with a truncated or nonsensical body, in both wire formats.
        for version in [0, 1] {
            for message_type in 0..=3 {
                for body in [
                    &[][..],
                    &[0xff; 16][..],
                    &[0x01, 0x00, 0x00, 0x00, 0x05][..],
                ] {
                    datagrams.push([&header(version, message_type)[..], body].concat());
                }
            }
        }
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for datagram in &datagrams {
            sender.send_to(datagram, target).unwrap();
        }

        let b = join("main", "b", &[Service::Indexer], &seed(&a)).await;
        for datagram in &datagrams {
            sender.send_to(datagram, target).unwrap();
        }
        for node in [&a, &b] {
            wait_until("b joins despite the garbage", CONVERGENCE, || {
                all_ready(node, &["a", "b"])
            })
            .await;
        }
        for node in [a, b] {
            node.shutdown().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_node_whose_seeds_point_nowhere_starts_alone() {
    bounded(async {
        let seeds = ["127.0.0.1:1".to_string(), "not-a-host-port".to_string()];
        let a = join("main", "a", &[Service::Searcher], &seeds).await;
        // Enough rounds for a seed to have answered if there were one.
        tokio::time::sleep(GOSSIP_INTERVAL * 5).await;
        let snapshot = a.snapshot();
        assert_eq!(snapshot.live_nodes, vec![a.self_member()]);
        assert!(snapshot.dead_nodes.is_empty());
        assert_eq!(node_ids(&a.ready_members_with(Service::Searcher)), ["a"]);
        a.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_gossip_port_in_use_is_an_error_naming_the_port() {
    bounded(async {
        let a = join("main", "a", &[Service::Searcher], &[]).await;
        let taken: SocketAddr = a.self_member().gossip_address.parse().unwrap();
        let error = Cluster::join(ClusterConfig {
            gossip_listen_addr: taken,
            gossip_advertise_addr: taken,
            ..config("main", "b", &[Service::Searcher], &[])
        })
        .await
        .unwrap_err();
        assert!(matches!(error, ClusterError::GossipBind { addr, .. } if addr == taken));
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "cannot bind gossip port {} on {taken}/UDP: ",
                taken.port()
            )),
            "{message}"
        );
        a.shutdown().await;
    })
    .await;
}
