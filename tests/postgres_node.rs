//! A node whose metastore is PostgreSQL (started by `.ci/run`): indexes, splits, checkpoints,
//! merges and delete tasks live in the database and survive a restart.

mod common;

use std::time::{Duration, Instant};

use common::TestNode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_postgres_metastore() {
    let Ok(url) = std::env::var("QUARRY_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide QUARRY_TEST_POSTGRES_URL"
        );
        eprintln!("SKIPPED: set QUARRY_TEST_POSTGRES_URL=postgres://… to run a node on a PostgreSQL metastore");
        return;
    };
    // The database is shared with other runs: a fresh index id keeps this one apart.
    let index_id = format!("pg-logs-{}", ulid::Ulid::new().to_string().to_lowercase());
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::start_with(
        dir.path(),
        &[],
        &format!("metastore_uri: {url}\nindexer:\n  merge_interval_secs: 1\n"),
    )
    .await;
    node.create_index(&format!(
        "index_id: {index_id}
doc_mapping:
  field_mappings:
    - {{name: ts, type: datetime, fast: true}}
    - {{name: level, type: text, tokenizer: raw}}
  timestamp_field: ts
indexing_settings:
  merge_policy: {{type: stable_log, merge_factor: 3, max_merge_factor: 3}}
"
    ))
    .await;
    for commit in 0..3u64 {
        let body: String = (commit * 100..(commit + 1) * 100)
            .map(|n| {
                let level = if n % 4 == 0 { "ERROR" } else { "INFO" };
                json!({"ts": 1_767_225_600 + n, "level": level}).to_string() + "\n"
            })
            .collect();
        node.ingest(&index_id, body, "force").await;
    }
    let (status, task) = node
        .post_json(
            &format!("/api/v1/{index_id}/delete-tasks"),
            &json!({"query": "level:ERROR"}),
        )
        .await;
    assert_eq!(status, 200, "{task}");
    let started = Instant::now();
    loop {
        let (_, description) = node.get(&format!("/api/v1/indexes/{index_id}")).await;
        let splits = description["num_published_splits"].as_u64().unwrap_or(0);
        if splits == 1 && node.count(&index_id, "level:ERROR").await == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{description}\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(node.count(&index_id, "*").await, 225);

    // Everything is in the database: a restarted node sees the same index and tasks.
    node.restart().await;
    assert_eq!(node.count(&index_id, "*").await, 225);
    let (status, tasks) = node.get(&format!("/api/v1/{index_id}/delete-tasks")).await;
    assert_eq!(status, 200);
    assert_eq!(tasks.as_array().unwrap().len(), 1);
    let (status, _) = node
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/indexes/{index_id}"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = node.get(&format!("/api/v1/indexes/{index_id}")).await;
    assert_eq!(status, 404);
}
