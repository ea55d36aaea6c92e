//! A cluster of real `quarry` processes on 127.0.0.1: gossip membership, the file-backed
//! metastore served by one node to the others, and searches fanned out to every searcher,
//! which keep answering in full while searcher nodes are killed and joined.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::cluster::{configure, live_ready_nodes, metric, wait_for_members, CLUSTER_SECRET};
use common::TestNode;
use serde_json::json;

const INDEX_CONFIG: &str = "index_id: cluster-logs
doc_mapping:
  field_mappings:
    - {name: ts, type: datetime, fast: true}
    - {name: id, type: text, tokenizer: raw, fast: true}
    - {name: node, type: text, tokenizer: raw, fast: true}
    - {name: body, type: text}
  timestamp_field: ts
indexing_settings:
  merge_policy:
    type: no_merge
";

fn batch(node_name: &str, first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| {
            format!(
                "{{\"ts\": {}, \"id\": \"doc-{n}\", \"node\": \"{node_name}\", \"body\": \"event number {n} from {node_name}\"}}\n",
                1_767_225_600 + n as i64
            )
        })
        .collect()
}

/// Every id a search finds, walked with `search_after`.
async fn all_ids(node: &TestNode) -> Vec<String> {
    let hits = node
        .es_hits_after(
            "cluster-logs",
            json!({"size": 500, "sort": [{"ts": "asc"}], "query": {"match_all": {}}}),
            |_, _| {},
        )
        .await;
    hits.iter()
        .map(|hit| hit["_source"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_fan_out_and_survive_a_searcher_killed_and_one_joining() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = configure(
        dir.path(),
        "node-1",
        "metastore, control_plane, indexer, searcher, janitor",
        None,
    );
    first.node.start_again().await;
    let mut second = configure(
        dir.path(),
        "node-2",
        "indexer, searcher",
        Some(first.gossip_port),
    );
    let mut third = configure(
        dir.path(),
        "node-3",
        "indexer, searcher",
        Some(first.gossip_port),
    );
    second.node.start_again().await;
    third.node.start_again().await;
    for member in [&first, &second, &third] {
        wait_for_members(
            &member.node,
            &["node-1", "node-2", "node-3"],
            Duration::from_secs(30),
        )
        .await;
    }

    // Index lifecycle through a node without the metastore service: it calls node-1.
    second.node.create_index(INDEX_CONFIG).await;
    let (status, described) = third.node.get("/api/v1/indexes/cluster-logs").await;
    assert_eq!(status, 200, "{described}");
    let (status, conflict) = third
        .node
        .request(
            reqwest::Method::POST,
            "/api/v1/indexes",
            "application/yaml",
            INDEX_CONFIG.to_string(),
        )
        .await;
    assert_eq!(status, 409, "{conflict}");

    // Both nodes ingest into the same index, each into its own log and checkpoint
    // partition; every commit makes a split.
    let mut expected_by_node: BTreeMap<&str, u64> = BTreeMap::new();
    let mut next_id = 0;
    // Twenty splits: each node is the rendezvous home of some of them (a node has none with
    // probability 3 x (2/3)^20, under 0.1%).
    for round in 0..10 {
        for (member, name) in [(&second, "node-2"), (&third, "node-3")] {
            let count = 60 + round * 10;
            let response = member
                .node
                .ingest("cluster-logs", batch(name, next_id, count), "force")
                .await;
            assert_eq!(response["num_ingested_docs"], json!(count));
            next_id += count;
            *expected_by_node.entry(name).or_default() += count as u64;
        }
    }
    let total = next_id as u64;
    let expected_ids: BTreeSet<String> = (0..next_id).map(|n| format!("doc-{n}")).collect();

    // Through every node: the same hits, each document once, and the same aggregations.
    for member in [&first, &second, &third] {
        assert_eq!(member.node.count("cluster-logs", "*").await, total);
        let ids = all_ids(&member.node).await;
        assert_eq!(ids.len() as u64, total, "through {}", member.node.endpoint);
        assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected_ids);
        let answer = member
            .node
            .search(
                "cluster-logs",
                json!({"query": "body:number", "max_hits": 5, "snippet_fields": ["body"],
                       "aggs": {"by_node": {"terms": {"field": "node"}}}}),
            )
            .await;
        assert_eq!(answer["num_hits"], json!(total));
        assert_eq!(answer["hits"].as_array().unwrap().len(), 5);
        assert_eq!(answer["errors"], json!([]));
        let snippet = answer["snippets"][0]["body"][0].as_str().unwrap();
        assert!(snippet.contains("<b>number</b>"), "{snippet}");
        let buckets: BTreeMap<String, u64> = answer["aggregations"]["by_node"]["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|bucket| {
                (
                    bucket["key"].as_str().unwrap().to_string(),
                    bucket["doc_count"].as_u64().unwrap(),
                )
            })
            .collect();
        let expected: BTreeMap<String, u64> = expected_by_node
            .iter()
            .map(|(name, count)| (name.to_string(), *count))
            .collect();
        assert_eq!(buckets, expected);
    }
    // A scroll opened on one node pages through any other: they forward to its owner.
    let (status, page) = first
        .node
        .post_json(
            "/api/v1/_elastic/cluster-logs/_search?scroll=1m",
            &json!({"size": 300, "query": {"match_all": {}}}),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let mut scroll_id = page["_scroll_id"].as_str().unwrap().to_string();
    let mut scrolled: Vec<String> = page["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["_source"]["id"].as_str().unwrap().to_string())
        .collect();
    for round in 0.. {
        let via = if round % 2 == 0 { &second } else { &third };
        let (status, page) = via
            .node
            .post_json(
                "/api/v1/_elastic/_search/scroll",
                &json!({"scroll": "1m", "scroll_id": scroll_id}),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let hits = page["hits"]["hits"].as_array().unwrap();
        if hits.is_empty() {
            break;
        }
        scrolled.extend(
            hits.iter()
                .map(|hit| hit["_source"]["id"].as_str().unwrap().to_string()),
        );
        scroll_id = page["_scroll_id"].as_str().unwrap().to_string();
    }
    assert_eq!(scrolled.len() as u64, total);
    assert_eq!(scrolled.into_iter().collect::<BTreeSet<_>>(), expected_ids);
    let (status, cleared) = third
        .node
        .request(
            reqwest::Method::DELETE,
            "/api/v1/_elastic/_search/scroll",
            "application/json",
            json!({ "scroll_id": scroll_id }).to_string(),
        )
        .await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared["num_freed"], json!(1));

    // Leaf work went to the other nodes, not only to the roots (every node roots some of
    // the searches above, so each node that is home to a split served another's root).
    let mut serving = 0;
    for member in [&first, &second, &third] {
        if metric(
            &member.node,
            "quarry_searcher_leaf_requests_from_other_nodes_total",
        )
        .await
            > 0.0
        {
            serving += 1;
        }
    }
    assert!(
        serving >= 2,
        "only {serving} node(s) ran leaf searches for another root"
    );

    // `_bulk` with `_id`s: the node that took the batch, and every other, answers a retry
    // with `noop`, even once that node is dead (the metastore node keeps the ids).
    let bulk: String = (0..50)
        .map(|n| {
            format!(
                "{{\"index\": {{\"_index\": \"cluster-logs\", \"_id\": \"bulk-{n}\"}}}}\n{}\n",
                json!({"ts": 1_767_300_000 + n, "id": format!("bulk-{n}"), "node": "bulk", "body": "event shipped twice"})
            )
        })
        .collect();
    assert_eq!(
        third.node.bulk_results(&bulk).await,
        BTreeSet::from(["created".to_string()])
    );
    assert_eq!(
        second.node.bulk_results(&bulk).await,
        BTreeSet::from(["noop".to_string()])
    );
    let total = total + 50;

    // A searcher dies: queries through the others keep answering in full, retrying the
    // dead node's splits on the next node in their order until gossip declares it dead.
    third.node.kill9();
    let started = Instant::now();
    let mut queries = 0;
    while started.elapsed() < Duration::from_secs(6) {
        for member in [&first, &second] {
            let answer = member
                .node
                .search(
                    "cluster-logs",
                    json!({"query": "body:event", "max_hits": 20}),
                )
                .await;
            assert_eq!(answer["num_hits"], json!(total), "{answer}");
            assert_eq!(answer["errors"], json!([]), "{answer}");
            assert_eq!(answer["hits"].as_array().unwrap().len(), 20);
            queries += 1;
        }
    }
    assert!(queries > 4);
    assert_eq!(
        first.node.bulk_results(&bulk).await,
        BTreeSet::from(["noop".to_string()])
    );
    assert_eq!(first.node.count("cluster-logs", "node:bulk").await, 50);
    assert!(metric(&first.node, "quarry_searcher_leaf_retries_total").await > 0.0);
    wait_for_members(&first.node, &["node-1", "node-2"], Duration::from_secs(30)).await;
    let (_, cluster) = first.node.get("/api/v1/cluster").await;
    let dead: Vec<&str> = cluster["dead_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| member["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(dead, ["node-3"], "{cluster}");

    // A searcher joins: it is given leaf work by the others' roots.
    let mut fourth = configure(dir.path(), "node-4", "searcher", Some(second.gossip_port));
    fourth.node.start_again().await;
    wait_for_members(
        &first.node,
        &["node-1", "node-2", "node-4"],
        Duration::from_secs(30),
    )
    .await;
    for _ in 0..5 {
        let ids = all_ids(&first.node).await;
        assert_eq!(ids.len() as u64, total);
    }
    assert!(
        metric(
            &fourth.node,
            "quarry_searcher_leaf_requests_from_other_nodes_total"
        )
        .await
            > 0.0,
        "the new node got no leaf work"
    );
    // And it roots searches of its own.
    assert_eq!(fourth.node.count("cluster-logs", "body:event").await, total);

    // Deleting the index through a non-metastore node removes it everywhere.
    let (status, body) = second
        .node
        .request(
            reqwest::Method::DELETE,
            "/api/v1/indexes/cluster-logs",
            "application/json",
            "",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = first.node.get("/api/v1/indexes/cluster-logs").await;
    assert_eq!(status, 404);
}

/// POSTs to `/internal/v1`, with the cluster secret header when given.
async fn internal_post(
    node: &TestNode,
    path: &str,
    secret: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", node.endpoint))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(secret) = secret {
        request = request.header("x-quarry-cluster-secret", secret);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_peers_and_bad_internal_requests_get_clear_answers() {
    let dir = tempfile::tempdir().unwrap();
    // Seeds that point nowhere: the node starts alone and says so.
    let mut lonely = configure(
        dir.path(),
        "lonely",
        "metastore, indexer, searcher",
        Some(1),
    );
    lonely.node.start_again().await;
    assert_eq!(
        live_ready_nodes(&lonely.node).await,
        BTreeSet::from(["lonely".to_string()])
    );
    // A datagram that is not sealed with the cluster secret is dropped, and counted.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(
            b"not a sealed gossip datagram",
            ("127.0.0.1", lonely.gossip_port),
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&lonely.node, "quarry_cluster_rejected_gossip_datagrams").await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the forged datagram was not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        lonely
            .node
            .wait_for_log(0, "alone", Duration::from_secs(20))
            .await,
        "no log line says the node is alone; log:\n{}",
        lonely.node.log()
    );

    // Garbage on the gossip port changes nothing.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for garbage in [&b"\x00\x01garbage"[..], &[0xff; 1500][..], b""] {
        socket
            .send_to(garbage, ("127.0.0.1", lonely.gossip_port))
            .unwrap();
    }

    // Malformed internal requests: 400 with a JSON error, never a panic.
    for (path, body) in [
        ("/internal/v1/leaf_search", "{\"index_uid\": 3}"),
        ("/internal/v1/fetch_docs", "not json"),
        (
            "/internal/v1/metastore",
            "{\"method\": \"drop_everything\"}",
        ),
    ] {
        // Without the cluster secret, nothing gets in; with it, the body is checked.
        let (status, answer) = internal_post(&lonely.node, path, None, body).await;
        assert_eq!(status, 401, "{path}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("cluster secret"));
        let (status, answer) = internal_post(&lonely.node, path, Some("wrong"), body).await;
        assert_eq!(status, 401, "{path}: {answer}");
        let (status, answer) = internal_post(&lonely.node, path, Some(CLUSTER_SECRET), body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(answer["error"].as_str().is_some(), "{path}: {answer}");
    }
    // Bodies over axum's 2 MiB default are read (a leaf request names every split).
    let big = format!("{{\"index_uid\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let (status, answer) = internal_post(
        &lonely.node,
        "/internal/v1/leaf_search",
        Some(CLUSTER_SECRET),
        &big,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("malformed"),
        "{answer}"
    );
    // A metastore call that names a missing index answers the metastore's own error.
    let (status, answer) = internal_post(
        &lonely.node,
        "/internal/v1/metastore",
        Some(CLUSTER_SECRET),
        r#"{"method": "index_metadata", "index_id": "missing"}"#,
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["metastore_error"]["kind"], json!("index_not_found"));
    assert_eq!(
        live_ready_nodes(&lonely.node).await,
        BTreeSet::from(["lonely".to_string()])
    );

    // A node of another cluster seeded here is never admitted.
    let mut stranger = configure(
        dir.path(),
        "stranger",
        "searcher, metastore",
        Some(lonely.gossip_port),
    );
    let config_path = dir.path().join("stranger").join("node.yaml");
    let config = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("cluster_id: test-cluster", "cluster_id: other-cluster");
    std::fs::write(&config_path, config).unwrap();
    stranger.node.start_again().await;

    // A second node serving the same file-backed metastore refuses to start.
    let mut rival = configure(
        dir.path(),
        "rival",
        "metastore, searcher",
        Some(lonely.gossip_port),
    );
    rival.node.spawn_unchecked();
    let status = rival.node.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|status| !status.success()),
        "a second metastore node started; log:\n{}",
        rival.node.log()
    );
    assert!(
        rival
            .node
            .log()
            .contains("already runs the metastore service"),
        "{}",
        rival.node.log()
    );
    assert_eq!(
        live_ready_nodes(&lonely.node).await,
        BTreeSet::from(["lonely".to_string()])
    );
    assert_eq!(
        live_ready_nodes(&stranger.node).await,
        BTreeSet::from(["stranger".to_string()])
    );
}
