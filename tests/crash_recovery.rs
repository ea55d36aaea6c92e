//! Kill -9 the node while 8 clients ingest, at least three times (during a split upload,
//! during a publish, and at a random moment), restart it each time; then every
//! acknowledged document must be searchable exactly once.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestNode;
use reqwest::Method;
use serde_json::json;

const NUM_CLIENTS: usize = 8;
const BATCH_DOCS: usize = 100;

const INDEX_CONFIG: &str = r#"
index_id: crash-logs
doc_mapping:
  mode: strict
  field_mappings:
    - {name: ts, type: datetime, fast: true}
    - {name: batch, type: text, tokenizer: raw}
    - {name: id, type: text, tokenizer: raw}
    - {name: body, type: text}
  timestamp_field: ts
indexing_settings:
  commit_timeout_secs: 1
  split_num_docs_target: 3000
"#;

#[derive(Default)]
struct Ledger {
    /// Batch id → whether the node acknowledged it.
    batches: BTreeMap<String, bool>,
}

async fn client_loop(
    endpoint: String,
    client_id: usize,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut batch_number = 0;
    while !stop.load(Ordering::SeqCst) {
        let batch_id = format!("c{client_id}-b{batch_number}");
        batch_number += 1;
        let mut body = String::new();
        for doc in 0..BATCH_DOCS {
            let line = json!({"ts": 1_767_225_600 + batch_number as i64, "batch": batch_id, "id": format!("{batch_id}-d{doc}"), "body": "crash test event"});
            body.push_str(&line.to_string());
            body.push('\n');
        }
        ledger
            .lock()
            .unwrap()
            .batches
            .insert(batch_id.clone(), false);
        let response = http
            .post(format!("{endpoint}/api/v1/crash-logs/ingest?commit=auto"))
            .body(body)
            .send()
            .await;
        match response {
            Ok(response) if response.status().is_success() => {
                let answer: serde_json::Value = response.json().await.unwrap_or_default();
                if answer["num_ingested_docs"] == json!(BATCH_DOCS) {
                    ledger.lock().unwrap().batches.insert(batch_id, true);
                }
            }
            // Refused, or the node died mid-request: not acknowledged, may or may not be in.
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_documents_survive_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut node =
        TestNode::start_with_env(dir.path(), &[("QUARRY_FAULT_INJECTION_DELAY_MS", "300")]).await;
    node.create_index(INDEX_CONFIG).await;

    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let clients: Vec<_> = (0..NUM_CLIENTS)
        .map(|client_id| {
            tokio::spawn(client_loop(
                node.endpoint.clone(),
                client_id,
                stop.clone(),
                ledger.clone(),
            ))
        })
        .collect();

    // Deterministic "random" moments for the third kill.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut random_millis = |low: u64, high: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        low + seed % (high - low)
    };
    let phases = ["uploading split", "publishing split", "random"];
    for phase in phases {
        tokio::time::sleep(Duration::from_millis(random_millis(300, 900))).await;
        let from = node.log_len();
        if phase == "random" {
            tokio::time::sleep(Duration::from_millis(random_millis(100, 1500))).await;
        } else {
            assert!(
                node.wait_for_log(from, phase, Duration::from_secs(30))
                    .await,
                "never saw `{phase}`; log:\n{}",
                node.log()
            );
        }
        node.kill9();
        println!("killed the node during: {phase}");
        tokio::time::sleep(Duration::from_millis(random_millis(50, 300))).await;
        node.start_again().await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }

    let (status, body) = node
        .request(
            Method::POST,
            "/api/v1/crash-logs/ingest?commit=force",
            "application/x-ndjson",
            "",
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let batches = ledger.lock().unwrap().batches.clone();
    let mut acked_docs = 0;
    let mut found_acked_docs = 0;
    let mut duplicates = 0;
    let mut unacked_found = 0;
    for (batch_id, acked) in &batches {
        let count = node.count("crash-logs", &format!("batch:{batch_id}")).await;
        if count > BATCH_DOCS as u64 {
            duplicates += count - BATCH_DOCS as u64;
        }
        if *acked {
            acked_docs += BATCH_DOCS as u64;
            found_acked_docs += count.min(BATCH_DOCS as u64);
            assert_eq!(
                count, BATCH_DOCS as u64,
                "acknowledged batch {batch_id} found {count} times"
            );
        } else {
            // A batch is durable as a whole or not at all.
            assert!(
                count == 0 || count == BATCH_DOCS as u64,
                "unacknowledged batch {batch_id} partially present: {count}"
            );
            unacked_found += count;
        }
    }
    let total = node.count("crash-logs", "*").await;
    println!(
        "acked: {acked_docs} docs in {} batches, found: {found_acked_docs}, duplicates: {duplicates}, unacknowledged but present: {unacked_found}, total: {total}",
        batches.values().filter(|acked| **acked).count()
    );
    assert!(acked_docs > 0);
    assert_eq!(duplicates, 0);
    assert_eq!(total, found_acked_docs + unacked_found);
    // Every id once: the per-id spot check on the first acknowledged batch.
    if let Some((batch_id, _)) = batches.iter().find(|(_, acked)| **acked) {
        for doc in 0..BATCH_DOCS {
            assert_eq!(
                node.count("crash-logs", &format!("id:{batch_id}-d{doc}"))
                    .await,
                1
            );
        }
    }
    node.stop();
}

/// A record damaged in the middle of the log must stop the shard loudly (readiness,
/// metrics, 503 on ingest) instead of silently skipping acknowledged data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_wal_fails_the_shard_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::start(dir.path()).await;
    let config = INDEX_CONFIG.replace("commit_timeout_secs: 1", "commit_timeout_secs: 600");
    node.create_index(&config).await;
    for batch in 0..3 {
        let line = json!({"ts": 1_767_225_600, "batch": format!("b{batch}"), "id": "x", "body": "kept only in the write-ahead log"});
        let (status, _) = node
            .request(
                Method::POST,
                "/api/v1/crash-logs/ingest",
                "application/x-ndjson",
                line.to_string(),
            )
            .await;
        assert_eq!(status, 200);
    }
    node.kill9();

    let wal_root = dir.path().join("qdata/wal");
    let shard_dir = std::fs::read_dir(&wal_root)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let segment = std::fs::read_dir(&shard_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();

    node.start_again_unready().await;
    let (status, readiness) = node.get("/health/readyz").await;
    assert_eq!(status, 503, "{readiness}");
    let reason = readiness["failed_shards"]["crash-logs"].as_str().unwrap();
    assert!(
        reason.contains(&segment.display().to_string()) && reason.contains("byte offset"),
        "{reason}"
    );
    let (status, answer) = node
        .request(
            Method::POST,
            "/api/v1/crash-logs/ingest",
            "application/x-ndjson",
            "{}",
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    let (_, metrics) = node.get("/metrics").await;
    assert!(metrics.as_str().unwrap().contains("quarry_failed_shards 1"));
}
