//! Merges on a real node: many small commits merge as the stable-log policy says, while
//! searches keep finding every document exactly once; the replaced split files are
//! deleted once the janitor's grace period is over.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::TestNode;
use serde_json::{json, Value};

const COMMITS: u64 = 12;
const DOCS_PER_COMMIT: u64 = 50;

const INDEX_CONFIG: &str = "index_id: merged-logs
doc_mapping:
  field_mappings:
    - {name: ts, type: datetime, fast: true}
    - {name: n, type: u64, fast: true}
    - {name: level, type: text, tokenizer: raw, fast: true}
  timestamp_field: ts
  tag_fields: [level]
indexing_settings:
  merge_policy:
    type: stable_log
    min_level_num_docs: 1000
    merge_factor: 3
    max_merge_factor: 3
";

async fn published_splits(node: &TestNode) -> Vec<Value> {
    published_splits_of(node, "merged-logs").await
}

async fn all_numbers(node: &TestNode) -> Vec<u64> {
    all_numbers_of(node, COMMITS * DOCS_PER_COMMIT).await
}

fn split_files(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".split"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_commits_merge_and_every_document_stays_found_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start_with(
        dir.path(),
        &[],
        "indexer:\n  merge_interval_secs: 1\njanitor:\n  interval_secs: 1\n  deletion_grace_period_secs: 2\n",
    )
    .await;
    node.create_index(INDEX_CONFIG).await;
    let expected: Vec<u64> = (0..COMMITS * DOCS_PER_COMMIT).collect();
    for commit in 0..COMMITS {
        let body: String = (0..DOCS_PER_COMMIT)
            .map(|i| {
                let n = commit * DOCS_PER_COMMIT + i;
                let level = if n.is_multiple_of(2) { "INFO" } else { "WARN" };
                json!({"ts": 1_767_225_600 + n, "n": n, "level": level}).to_string() + "\n"
            })
            .collect();
        node.ingest("merged-logs", body, "force").await;
    }

    // All splits stay below min_level_num_docs, so they share level 0, where three merge
    // into one until fewer than merge_factor are left: at most 2 splits (which ones depends
    // on how commits and planner passes interleave). Searches run the whole time: the swap
    // is atomic, so each sees every doc once.
    let started = Instant::now();
    loop {
        // Hits are sorted by the `n` column and read `n` from their source: in order only
        // if every source stayed with its document through the merges.
        let numbers = all_numbers(&node).await;
        let ascending: Vec<u64> = if numbers.first() > numbers.last() {
            numbers.iter().rev().copied().collect()
        } else {
            numbers.clone()
        };
        assert_eq!(
            ascending, expected,
            "every document exactly once during merges, with its own source"
        );
        if published_splits(&node).await.len() <= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "merges did not settle: {:?}\n{}",
            published_splits(&node).await.len(),
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let splits = published_splits(&node).await;
    let total: u64 = splits
        .iter()
        .map(|split| split["split_metadata"]["num_docs"].as_u64().unwrap())
        .sum();
    assert_eq!(total, COMMITS * DOCS_PER_COMMIT);
    // Settled: the policy finds nothing more to merge.
    let typed: Vec<quarry_common::metastore::Split> = splits
        .iter()
        .map(|split| serde_json::from_value(split.clone()).unwrap())
        .collect();
    let settings = quarry_config::IndexConfig::parse(
        INDEX_CONFIG.as_bytes(),
        quarry_config::ConfigFormat::Yaml,
    )
    .unwrap()
    .indexing_settings;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(quarry_indexer::plan_merges(&typed, &settings, now).is_empty());
    // 12 splits, each merge takes 3 and gives 1: 5 merges to reach 2.
    assert_eq!(splits.len(), 2);
    for split in &splits {
        let metadata = &split["split_metadata"];
        assert!(
            metadata["num_merge_ops"].as_u64().unwrap() >= 1,
            "{metadata}"
        );
        // Tags and time ranges of the inputs carry over, so pruning keeps working.
        assert_eq!(metadata["tags"], json!(["level:INFO", "level:WARN"]));
    }
    assert_eq!(
        node.count("merged-logs", "level:WARN").await,
        COMMITS * DOCS_PER_COMMIT / 2
    );
    let window = node
        .search(
            "merged-logs",
            json!({"query": "*", "start_timestamp": 1_767_225_600, "end_timestamp": 1_767_225_700, "max_hits": 0}),
        )
        .await;
    assert_eq!(window["num_hits"], json!(100));

    // The 15 replaced files go once the grace period is over; the 2 live ones stay.
    let (_, description) = node.get("/api/v1/indexes/merged-logs").await;
    let index_uri = description["index_config"]["index_uri"]
        .as_str()
        .or_else(|| description["index_uri"].as_str())
        .unwrap_or_else(|| panic!("no index_uri in {description}"))
        .to_string();
    let index_dir = std::path::PathBuf::from(index_uri.trim_start_matches("file://"));
    let live: BTreeSet<String> = splits
        .iter()
        .map(|split| {
            format!(
                "{}.split",
                split["split_metadata"]["split_id"].as_str().unwrap()
            )
        })
        .collect();
    let started = Instant::now();
    while split_files(&index_dir) != live {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "replaced split files were not deleted: {:?}",
            split_files(&index_dir)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The janitor deletes files before their records and counts them last, so the counter
    // may trail the files by one pass.
    let started = Instant::now();
    loop {
        let (_, metrics) = node
            .request(reqwest::Method::GET, "/metrics", "text/plain", "")
            .await;
        let metrics = metrics.as_str().unwrap_or_default().to_string();
        assert!(metrics.contains("merges_completed_total 5"), "{metrics}");
        if metrics.contains("janitor_deleted_marked_splits_total 15") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "janitor did not count 15 deleted splits: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const DELETE_CONFIG: &str = "index_id: pruned-logs
doc_mapping:
  field_mappings:
    - {name: ts, type: datetime, fast: true}
    - {name: n, type: u64, fast: true}
    - {name: level, type: text, tokenizer: raw, fast: true}
  timestamp_field: ts
";

fn level_of(n: u64) -> &'static str {
    ["INFO", "WARN", "ERROR"][(n % 3) as usize]
}

/// `n` from `from` to `to`, timestamps `1_767_225_600 + (n % 300)`: later batches reuse the
/// same seconds, so a delete task's time window covers old and new documents alike.
fn batch(from: u64, to: u64) -> String {
    (from..to)
        .map(|n| {
            json!({"ts": 1_767_225_600 + n % 300, "n": n, "level": level_of(n)}).to_string() + "\n"
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_tasks_remove_matching_documents_and_spare_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start_with(dir.path(), &[], "indexer:\n  merge_interval_secs: 1\n").await;
    node.create_index(DELETE_CONFIG).await;
    for (from, to) in [(0, 100), (100, 200), (200, 300)] {
        node.ingest("pruned-logs", batch(from, to), "force").await;
    }

    // Bad requests are refused by name and create nothing.
    let path = "/api/v1/pruned-logs/delete-tasks";
    let (status, refused) = node.post_json(path, &json!({"query": "level:("})).await;
    assert_eq!(status, 400, "{refused}");
    let (status, refused) = node
        .post_json(path, &json!({"query": "*", "after": 1}))
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("after"),
        "{refused}"
    );
    let (status, _) = node
        .post_json("/api/v1/no-such-index/delete-tasks", &json!({"query": "*"}))
        .await;
    assert_eq!(status, 404);

    // WARN documents of the first 150 seconds go.
    let (status, task) = node
        .post_json(
            path,
            &json!({"query": "level:WARN", "start_timestamp": 1_767_225_600, "end_timestamp": 1_767_225_750}),
        )
        .await;
    assert_eq!(status, 200, "{task}");
    assert_eq!(task["opstamp"], json!(1));
    // Ingested after the task, with the same timestamps: untouched.
    node.ingest("pruned-logs", batch(300, 400), "force").await;

    let deleted = |n: u64| n < 300 && level_of(n) == "WARN" && n % 300 < 150;
    let expected_total = (0..400).filter(|n| !deleted(*n)).count() as u64;
    let expected_warn = (0..400)
        .filter(|n| level_of(*n) == "WARN" && !deleted(*n))
        .count() as u64;
    let started = Instant::now();
    while node.count("pruned-logs", "level:WARN").await != expected_warn {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the delete task was not applied:\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(node.count("pruned-logs", "*").await, expected_total);
    assert_eq!(node.count("pruned-logs", "level:INFO").await, 134);
    let answer = node
        .search(
            "pruned-logs",
            json!({"query": "level:WARN", "max_hits": 1000, "sort_by": "n"}),
        )
        .await;
    let left: Vec<u64> = answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["n"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (0..400)
        .filter(|n| level_of(*n) == "WARN" && !deleted(*n))
        .collect();
    assert_eq!(left, expected);

    let (status, tasks) = node.get(path).await;
    assert_eq!(status, 200);
    assert_eq!(tasks.as_array().unwrap().len(), 1);
    assert_eq!(tasks[0]["delete_query"]["query"], json!("level:WARN"));
    // Every split now stands at the task's opstamp.
    for split in published_splits_of(&node, "pruned-logs").await {
        assert_eq!(
            split["split_metadata"]["delete_opstamp"],
            json!(1),
            "{split}"
        );
    }
}

async fn published_splits_of(node: &TestNode, index: &str) -> Vec<Value> {
    let (_, answer) = node.get(&format!("/api/v1/indexes/{index}/splits")).await;
    answer["splits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|split| split["split_state"] == json!("published"))
        .cloned()
        .collect()
}

/// A node killed between uploading a merged split and publishing it: after a restart the
/// orphan is cleaned up, the merge is redone, and every document is there exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_a_merge_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = "indexer:\n  merge_interval_secs: 1\njanitor:\n  interval_secs: 1\n  staged_split_timeout_secs: 4\n  deletion_grace_period_secs: 1\n";
    let mut node = TestNode::start_with(
        dir.path(),
        &[("QUARRY_FAULT_INJECTION_DELAY_MS", "1500")],
        config,
    )
    .await;
    node.create_index(INDEX_CONFIG).await;
    let log_start = node.log_len();
    for commit in 0..3 {
        let body: String = (0..DOCS_PER_COMMIT)
            .map(|i| {
                let n = commit * DOCS_PER_COMMIT + i;
                json!({"ts": 1_767_225_600 + n, "n": n, "level": "INFO"}).to_string() + "\n"
            })
            .collect();
        node.ingest("merged-logs", body, "force").await;
    }
    assert!(
        node.wait_for_log(log_start, "uploading merged split", Duration::from_secs(30))
            .await,
        "no merge started:\n{}",
        node.log()
    );
    // Inside the pause between upload and publish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.kill9();

    let mut node = {
        // The same data dir and config, without the pause.
        let mut restarted = TestNode::start_with(dir.path(), &[], config).await;
        std::mem::swap(&mut node, &mut restarted);
        drop(restarted);
        node
    };
    // The killed merge left its output staged (uploaded, never published).
    let (_, all) = node.get("/api/v1/indexes/merged-logs/splits").await;
    assert!(
        all["splits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|split| split["split_state"] == json!("staged")),
        "{all}"
    );
    let started = Instant::now();
    loop {
        let splits = published_splits(&node).await;
        let (_, all) = node.get("/api/v1/indexes/merged-logs/splits").await;
        let leftovers = all["splits"].as_array().unwrap().len() - splits.len();
        if splits.len() == 1 && leftovers == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} published, {leftovers} staged or marked:\n{}",
            splits.len(),
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut numbers = all_numbers_of(&node, 3 * DOCS_PER_COMMIT).await;
    numbers.sort();
    assert_eq!(numbers, (0..3 * DOCS_PER_COMMIT).collect::<Vec<_>>());
    node.restart().await;
    assert_eq!(node.count("merged-logs", "*").await, 3 * DOCS_PER_COMMIT);
}

async fn all_numbers_of(node: &TestNode, expected_hits: u64) -> Vec<u64> {
    let answer = node
        .search(
            "merged-logs",
            json!({"query": "*", "max_hits": 1000, "sort_by": "n"}),
        )
        .await;
    assert_eq!(answer["num_hits"], json!(expected_hits));
    answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["n"].as_u64().unwrap())
        .collect()
}
