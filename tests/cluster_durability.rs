//! No acknowledged document is lost with the node that took it: the write-ahead logs live
//! on object storage (`ingest.wal_uri`), and when a node dies (`kill -9`) or stops answering
//! (`SIGSTOP`), the control plane hands its shards to live indexers, which index and
//! publish them. Real processes on 127.0.0.1, on SeaweedFS in CI (a shared folder through
//! the same object-storage code elsewhere), with the file-backed or PostgreSQL metastore.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{configure_with, metric, wait_for_members, ClusterNode};
use common::TestNode;
use serde_json::json;

const CLIENTS_PER_NODE: usize = 4;
const DOCS_PER_REQUEST: usize = 40;

fn index_config(index_id: &str) -> String {
    format!(
        "index_id: {index_id}
doc_mapping:
  field_mappings:
    - {{name: ts, type: datetime, fast: true}}
    - {{name: id, type: text, tokenizer: raw, fast: true}}
    - {{name: body, type: text}}
  timestamp_field: ts
indexing_settings:
  commit_timeout_secs: 2
  merge_policy:
    type: no_merge
"
    )
}

/// Where the cluster keeps indexes and logs: an S3 prefix when a server is configured (CI
/// always has one), else a folder shared by the test's processes. The YAML to add to each
/// node's config for it.
fn object_storage(dir: &Path) -> (String, String) {
    match (
        std::env::var("QUARRY_TEST_S3_ENDPOINT"),
        std::env::var("QUARRY_TEST_S3_BUCKET"),
    ) {
        (Ok(endpoint), Ok(bucket)) => (
            format!("s3://{bucket}/cluster-test-{}", ulid::Ulid::new()),
            format!(
                "storage:\n  s3:\n    endpoint: {endpoint}\n    region: us-east-1\n    force_path_style_access: true\n"
            ),
        ),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must run the cluster durability tests on S3: set QUARRY_TEST_S3_ENDPOINT and QUARRY_TEST_S3_BUCKET"
            );
            eprintln!("NOTE: no S3 server configured; the logs go to a shared folder through the same object-storage code");
            (dir.join("shared").display().to_string(), String::new())
        }
    }
}

fn wal_config(root: &str, storage_yaml: &str) -> String {
    format!("ingest:\n  wal_uri: {root}/wal\n  wal_flush_interval_ms: 25\n{storage_yaml}")
}

/// A node whose indexes, file-backed metastore and logs all live under `root`.
fn node_on(
    dir: &Path,
    node_id: &str,
    services: &str,
    seed: Option<u16>,
    (root, storage_yaml): &(String, String),
) -> ClusterNode {
    let metastore = format!("{root}/indexes");
    configure_with(
        dir,
        node_id,
        services,
        seed,
        &metastore,
        &metastore,
        &wal_config(root, storage_yaml),
    )
}

/// Clients that each send batches of new documents through one node until told to stop
/// or until the node stops answering, and remember which documents were acknowledged.
struct Load {
    acknowledged: Arc<Mutex<BTreeSet<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(index_id: &str, targets: &[(&str, &TestNode)]) -> Load {
        let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (name, node) in targets {
            for client in 0..CLIENTS_PER_NODE {
                let url = format!("{}/api/v1/{index_id}/ingest?commit=auto", node.endpoint);
                let prefix = format!("{name}-c{client}");
                let acknowledged = acknowledged.clone();
                let stop = stop.clone();
                tasks.push(tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    let mut next = 0usize;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let ids: Vec<String> = (next..next + DOCS_PER_REQUEST)
                            .map(|n| format!("{prefix}-{n}"))
                            .collect();
                        next += DOCS_PER_REQUEST;
                        let body: String = ids
                            .iter()
                            .enumerate()
                            .map(|(offset, id)| {
                                json!({"ts": 1_767_225_600 + offset as i64, "id": id, "body": "durable event"})
                                    .to_string()
                                    + "\n"
                            })
                            .collect();
                        let response = tokio::time::timeout(
                            Duration::from_secs(10),
                            http.post(&url).body(body).send(),
                        )
                        .await;
                        match response {
                            Ok(Ok(response)) if response.status().is_success() => {
                                acknowledged.lock().unwrap().extend(ids);
                            }
                            // Back-pressure: the same documents are not resent, new ones are.
                            Ok(Ok(response)) if response.status().as_u16() == 429 => {
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            // The node died: nothing more goes through it.
                            _ => return,
                        }
                    }
                }));
            }
        }
        Load {
            acknowledged,
            stop,
            tasks,
        }
    }

    async fn finish(self) -> BTreeSet<String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
        let acknowledged = self.acknowledged.lock().unwrap().clone();
        acknowledged
    }
}

/// Every id the index holds, with duplicates kept.
async fn all_ids(node: &TestNode, index_id: &str) -> Vec<String> {
    node.es_hits_after(
        index_id,
        json!({"size": 5000, "sort": [{"id": "asc"}], "query": {"match_all": {}}, "_source": ["id"]}),
        |_, _| {},
    )
    .await
    .iter()
    .map(|hit| hit["_source"]["id"].as_str().unwrap().to_string())
    .collect()
}

/// Waits until every acknowledged document is searchable through `node`, then checks that
/// none is there twice. Documents that were never acknowledged may or may not be there.
async fn assert_all_acknowledged_searchable_once(
    node: &TestNode,
    index_id: &str,
    acknowledged: &BTreeSet<String>,
    timeout: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let ids = all_ids(node, index_id).await;
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "some documents are there twice ({} hits, {} distinct)",
            ids.len(),
            unique.len()
        );
        let missing = acknowledged.difference(&unique).count();
        if missing == 0 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "{missing} of {} acknowledged documents are still not searchable after {timeout:?}; log:\n{}",
            acknowledged.len(),
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn start_all(nodes: &mut [&mut ClusterNode]) {
    for node in nodes.iter_mut() {
        node.node.start_again().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexer_killed_mid_stream_loses_no_acknowledged_document() {
    let dir = tempfile::tempdir().unwrap();
    let storage = object_storage(dir.path());
    let all = "metastore, control_plane, indexer, searcher, janitor";
    let mut first = node_on(dir.path(), "node-1", all, None, &storage);
    first.node.start_again().await;
    let seed = Some(first.gossip_port);
    let mut second = node_on(dir.path(), "node-2", "indexer, searcher", seed, &storage);
    let mut third = node_on(dir.path(), "node-3", "indexer, searcher", seed, &storage);
    start_all(&mut [&mut second, &mut third]).await;
    wait_for_members(
        &first.node,
        &["node-1", "node-2", "node-3"],
        Duration::from_secs(30),
    )
    .await;
    second
        .node
        .create_index(&index_config("durable-logs"))
        .await;

    second
        .node
        .create_index(&index_config("durable-other"))
        .await;

    // The node to kill writes to two indexes, so that its flushes hold both shards.
    let load = Load::start("durable-logs", &[("n2", &second.node), ("n3", &third.node)]);
    let other_load = Load::start("durable-other", &[("m3", &third.node)]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let shards_per_flush = metric(&third.node, "quarry_wal_object_flush_shards_total").await
        / metric(&third.node, "quarry_wal_object_flushes_total").await;
    assert!(
        shards_per_flush > 1.0,
        "one object per flush must hold the batches of both indexes ({shards_per_flush} shards per flush)"
    );
    // `_bulk` items without an `_id`, acknowledged by the node about to die and not yet in
    // a split (the commit timeout is 2 s): the node that adopts its shard replays them
    // under the ids they were answered with.
    let bulk_body: String = (0..5)
        .map(|n| {
            format!(
                "{{\"index\": {{}}}}\n{}\n",
                json!({"ts": 1_767_225_600 + n, "id": format!("adopted-{n}"), "body": "bulk event"})
            )
        })
        .collect();
    let (status, bulk_answer) = third
        .node
        .request(
            reqwest::Method::POST,
            "/api/v1/_elastic/durable-logs/_bulk",
            "application/x-ndjson",
            bulk_body,
        )
        .await;
    assert_eq!(status, 200, "{bulk_answer}");
    let adopted_ids: Vec<String> = bulk_answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["index"]["_id"].as_str().unwrap().to_string())
        .collect();
    third.node.kill9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let acknowledged = load.finish().await;
    let other_acknowledged = other_load.finish().await;
    assert!(!other_acknowledged.is_empty());
    let through_third = acknowledged
        .iter()
        .filter(|id| id.starts_with("n3-"))
        .count();
    assert!(
        through_third > 0 && acknowledged.len() > through_third,
        "both nodes must have acknowledged documents ({through_third} of {})",
        acknowledged.len()
    );
    let took = assert_all_acknowledged_searchable_once(
        &first.node,
        "durable-logs",
        &acknowledged,
        Duration::from_secs(60),
    )
    .await;
    eprintln!(
        "{} acknowledged documents ({through_third} through the killed node) searchable {took:?} after the load stopped",
        acknowledged.len()
    );
    for (n, id) in adopted_ids.iter().enumerate() {
        let started = Instant::now();
        loop {
            let (status, found) = first
                .node
                .get(&format!("/api/v1/_elastic/durable-logs/_doc/{id}"))
                .await;
            if status == 200 {
                assert_eq!(
                    found["_source"]["id"],
                    json!(format!("adopted-{n}")),
                    "{found}"
                );
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "`_bulk` id {id} of the dead node was not found: {found}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert_all_acknowledged_searchable_once(
        &first.node,
        "durable-other",
        &other_acknowledged,
        Duration::from_secs(60),
    )
    .await;
    // The dead node's shards were drained by live indexers, then closed, and its log's
    // objects deleted: the control plane sees no orphan shard any more.
    let closed = metric(&first.node, "quarry_adopted_shards_closed_total").await
        + metric(&second.node, "quarry_adopted_shards_closed_total").await;
    assert!(
        closed >= 2.0,
        "the dead node's two shards were not both drained"
    );
    let started = Instant::now();
    while metric(&first.node, "quarry_indexing_plan_orphan_shards").await > 0.0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the dead node's log objects were not deleted; log:\n{}",
            first.node.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(metric(&first.node, "quarry_indexing_plan_version").await >= 1.0);
    assert!(metric(&second.node, "quarry_wal_object_flushes_total").await > 0.0);
    assert!(
        metric(
            &second.node,
            "quarry_wal_object_flush_duration_seconds_count"
        )
        .await
            > 0.0
    );
    assert_eq!(metric(&second.node, "quarry_indexer_own_shards").await, 1.0);

    // An indexer that joins takes ingest at once, in a shard of its own.
    let mut fourth = node_on(
        dir.path(),
        "node-4",
        "indexer, searcher",
        Some(first.gossip_port),
        &storage,
    );
    fourth.node.start_again().await;
    let load = Load::start("durable-logs", &[("n4", &fourth.node)]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut after_join = load.finish().await;
    assert!(!after_join.is_empty());
    assert!(metric(&fourth.node, "quarry_wal_object_flushes_total").await > 0.0);
    after_join.extend(acknowledged);
    assert_all_acknowledged_searchable_once(
        &first.node,
        "durable-logs",
        &after_join,
        Duration::from_secs(60),
    )
    .await;

    // The index is deleted through a node without a shard of it: the nodes that had one
    // drop it (and its log) once their pipeline finds the index gone.
    let (status, body) = first
        .node
        .request(
            reqwest::Method::DELETE,
            "/api/v1/indexes/durable-logs",
            "application/json",
            "",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in [&second.node, &fourth.node] {
        while metric(node, "quarry_indexer_own_shards").await > 0.0 {
            assert!(
                Instant::now() < deadline,
                "{} kept its shard of the deleted index",
                node.endpoint
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_indexer_that_comes_back_publishes_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let storage = object_storage(dir.path());
    let all = "metastore, control_plane, indexer, searcher, janitor";
    let mut first = node_on(dir.path(), "node-1", all, None, &storage);
    first.node.start_again().await;
    let seed = Some(first.gossip_port);
    let mut second = node_on(dir.path(), "node-2", "indexer, searcher", seed, &storage);
    second.node.start_again().await;
    wait_for_members(&first.node, &["node-1", "node-2"], Duration::from_secs(30)).await;
    // Splits are cut only on commit_timeout_secs (2 s): a pause right after ingest leaves
    // acknowledged documents in node-2's pipeline, unpublished.
    second.node.create_index(&index_config("paused-logs")).await;
    let load = Load::start("paused-logs", &[("n2", &second.node)]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let acknowledged_before = load.finish().await;

    // node-2 stops answering: gossip declares it dead and its shard goes to node-1, which
    // publishes the records node-2 still holds in memory.
    second.node.signal("STOP");
    let drained = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if metric(&first.node, "quarry_adopted_shards_closed_total").await >= 1.0 {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert!(
        drained,
        "node-1 never drained the paused node's shard; log:\n{}",
        first.node.log()
    );
    assert_all_acknowledged_searchable_once(
        &first.node,
        "paused-logs",
        &acknowledged_before,
        Duration::from_secs(30),
    )
    .await;

    // node-2 comes back with its old pipeline: its publish of the same records is refused,
    // it replays from the published position, and takes new documents.
    second.node.signal("CONT");
    wait_for_members(&first.node, &["node-1", "node-2"], Duration::from_secs(30)).await;
    let load = Load::start("paused-logs", &[("n2b", &second.node)]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut acknowledged = load.finish().await;
    acknowledged.extend(acknowledged_before);
    // Its stale split, cut on the commit timeout, had time to try to publish too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_all_acknowledged_searchable_once(
        &first.node,
        "paused-logs",
        &acknowledged,
        Duration::from_secs(60),
    )
    .await;
    let refused = second.node.log().matches("checkpoint conflict").count();
    eprintln!("node-2's publishes refused after it came back: {refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_killed_on_a_postgres_metastore_loses_nothing() {
    let Ok(postgres_url) = std::env::var("QUARRY_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide QUARRY_TEST_POSTGRES_URL"
        );
        eprintln!("SKIPPED: set QUARRY_TEST_POSTGRES_URL=postgres://… to run the cluster on a PostgreSQL metastore");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (root, storage_yaml) = object_storage(dir.path());
    let extra = wal_config(&root, &storage_yaml);
    let index_root = format!("{root}/indexes");
    // Every node reaches PostgreSQL directly; two may act as control plane.
    let services = "control_plane, indexer, searcher, janitor";
    let mut first = configure_with(
        dir.path(),
        "node-1",
        services,
        None,
        &postgres_url,
        &index_root,
        &extra,
    );
    first.node.start_again().await;
    let seed = Some(first.gossip_port);
    let mut second = configure_with(
        dir.path(),
        "node-2",
        services,
        seed,
        &postgres_url,
        &index_root,
        &extra,
    );
    let mut third = configure_with(
        dir.path(),
        "node-3",
        "indexer, searcher",
        seed,
        &postgres_url,
        &index_root,
        &extra,
    );
    start_all(&mut [&mut second, &mut third]).await;
    wait_for_members(
        &third.node,
        &["node-1", "node-2", "node-3"],
        Duration::from_secs(30),
    )
    .await;
    // The database is shared with other runs: a fresh index id keeps this one apart.
    let index_id = format!(
        "pg-cluster-{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    third.node.create_index(&index_config(&index_id)).await;

    // A `_bulk` batch with `_id`s that node-1 acknowledges, to be retried after it died.
    let bulk: String = (0..30)
        .map(|n| {
            format!(
                "{{\"index\": {{\"_index\": \"{index_id}\", \"_id\": \"bulk-{n}\"}}}}\n{}\n",
                json!({"ts": 1_767_225_600 + n, "id": format!("bulk-{n}"), "body": "durable event"})
            )
        })
        .collect();
    assert_eq!(
        first.node.bulk_results(&bulk).await,
        BTreeSet::from(["created".to_string()])
    );

    let load = Load::start(&index_id, &[("n1", &first.node), ("n3", &third.node)]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // node-1 is the acting control plane (lowest id), and an indexer with a shard.
    first.node.kill9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut acknowledged = load.finish().await;
    assert!(acknowledged.iter().any(|id| id.starts_with("n1-")));
    // The batch node-1 took, retried through another node: the ids are in PostgreSQL.
    assert_eq!(
        third.node.bulk_results(&bulk).await,
        BTreeSet::from(["noop".to_string()])
    );
    acknowledged.extend((0..30).map(|n| format!("bulk-{n}")));
    // node-2 takes over the plan and gives node-1's shard to a live indexer.
    assert_all_acknowledged_searchable_once(
        &third.node,
        &index_id,
        &acknowledged,
        Duration::from_secs(60),
    )
    .await;
    assert!(metric(&second.node, "quarry_indexing_plan_version").await >= 1.0);
    let (status, _) = third
        .node
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/indexes/{index_id}"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(status, 200);
}
