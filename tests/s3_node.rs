//! A whole node on S3: index data and the file-backed metastore in a bucket of a real
//! S3-compatible server (SeaweedFS, started by `.ci/run`). Ingest, search, merge, delete
//! by query and index deletion all go through S3; nothing is left behind.

mod common;

use std::time::{Duration, Instant};

use common::TestNode;
use quarry_common::storage::StorageResolver;
use quarry_config::S3Config;
use serde_json::json;

const INDEX_CONFIG: &str = "index_id: s3-logs
doc_mapping:
  field_mappings:
    - {name: ts, type: datetime, fast: true}
    - {name: n, type: u64, fast: true}
    - {name: level, type: text, tokenizer: raw}
  timestamp_field: ts
indexing_settings:
  merge_policy: {type: stable_log, merge_factor: 3, max_merge_factor: 3}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_keeps_everything_on_s3() {
    let (Ok(endpoint), Ok(bucket)) = (
        std::env::var("QUARRY_TEST_S3_ENDPOINT"),
        std::env::var("QUARRY_TEST_S3_BUCKET"),
    ) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run the S3 node test: set QUARRY_TEST_S3_ENDPOINT and QUARRY_TEST_S3_BUCKET"
        );
        eprintln!("SKIPPED: set QUARRY_TEST_S3_ENDPOINT and QUARRY_TEST_S3_BUCKET (and AWS_* credentials) to run a node on S3");
        return;
    };
    let prefix = format!("node-test-{}", ulid::Ulid::new());
    let root = format!("s3://{bucket}/{prefix}");
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start_with(
        dir.path(),
        &[],
        &format!(
            "metastore_uri: {root}/metastore\ndefault_index_root_uri: {root}/indexes\nstorage:\n  s3:\n    endpoint: {endpoint}\n    region: us-east-1\n    force_path_style_access: true\nindexer:\n  merge_interval_secs: 1\njanitor:\n  interval_secs: 1\n  deletion_grace_period_secs: 1\n"
        ),
    )
    .await;
    node.create_index(INDEX_CONFIG).await;
    for commit in 0..3u64 {
        let body: String = (commit * 100..(commit + 1) * 100)
            .map(|n| {
                let level = if n % 2 == 0 { "INFO" } else { "WARN" };
                json!({"ts": 1_767_225_600 + n, "n": n, "level": level}).to_string() + "\n"
            })
            .collect();
        node.ingest("s3-logs", body, "force").await;
    }
    assert_eq!(node.count("s3-logs", "*").await, 300);

    // Three commits merge into one split; a delete task then rewrites it.
    let (status, task) = node
        .post_json(
            "/api/v1/s3-logs/delete-tasks",
            &json!({"query": "level:WARN"}),
        )
        .await;
    assert_eq!(status, 200, "{task}");
    let started = Instant::now();
    loop {
        let (_, description) = node.get("/api/v1/indexes/s3-logs").await;
        let splits = description["num_published_splits"].as_u64().unwrap_or(0);
        let warn = node.count("s3-logs", "level:WARN").await;
        if splits == 1 && warn == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{splits} splits, {warn} WARN docs left:\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(node.count("s3-logs", "level:INFO").await, 150);

    let (status, _) = node
        .request(
            reqwest::Method::DELETE,
            "/api/v1/indexes/s3-logs",
            "application/json",
            "",
        )
        .await;
    assert_eq!(status, 200);
    let resolver = StorageResolver::new(S3Config {
        endpoint: Some(endpoint),
        region: Some("us-east-1".to_string()),
        force_path_style_access: true,
        access_key_id: None,
        secret_access_key: None,
    });
    let storage = resolver
        .resolve(&format!("{root}/indexes/s3-logs"))
        .unwrap();
    // Marked splits may still be waiting for the janitor's grace period.
    let started = Instant::now();
    loop {
        let left: Vec<String> = storage
            .list("")
            .await
            .unwrap()
            .into_iter()
            .filter(|key| key.ends_with(".split"))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "left on S3: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
