//! A flood larger than the in-flight memory bound gets 429s with Retry-After, the node's
//! memory stays bounded, and everything acknowledged is searchable afterwards.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestNode;
use reqwest::Method;
use serde_json::json;

const NUM_CLIENTS: usize = 8;
const REQUESTS_PER_CLIENT: usize = 12;
const DOCS_PER_REQUEST: usize = 3_000;
/// Peak RSS allowed during the flood: the 64 MB indexing heap, 2 MiB of requests in
/// flight, and the runtime around them; far below what the flood would take unbounded.
const MAX_RSS_BYTES: u64 = 512 * 1024 * 1024;

const INDEX_CONFIG: &str = r#"
index_id: flood-logs
doc_mapping:
  mode: strict
  field_mappings:
    - {name: ts, type: datetime, fast: true}
    - {name: batch, type: text, tokenizer: raw}
    - {name: body, type: text}
  timestamp_field: ts
indexing_settings:
  commit_timeout_secs: 2
  resources:
    heap_size: 64MB
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flood_gets_429_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let node =
        TestNode::start_with(dir.path(), &[], "ingest:\n  max_in_flight_bytes: 2MiB\n").await;
    node.create_index(INDEX_CONFIG).await;

    let acked: Arc<Mutex<BTreeMap<String, bool>>> = Arc::default();
    let throttled = Arc::new(AtomicU64::new(0));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let flooding = Arc::new(std::sync::atomic::AtomicBool::new(true));

    let sampler = {
        let peak_rss = peak_rss.clone();
        let flooding = flooding.clone();
        let pid = node.pid().unwrap();
        tokio::spawn(async move {
            while flooding.load(Ordering::SeqCst) {
                if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                    if let Some(kib) = status
                        .lines()
                        .find(|line| line.starts_with("VmRSS:"))
                        .and_then(|line| line.split_whitespace().nth(1))
                        .and_then(|kib| kib.parse::<u64>().ok())
                    {
                        peak_rss.fetch_max(kib * 1024, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let clients: Vec<_> = (0..NUM_CLIENTS)
        .map(|client| {
            let endpoint = node.endpoint.clone();
            let acked = acked.clone();
            let throttled = throttled.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for request in 0..REQUESTS_PER_CLIENT {
                    let batch = format!("c{client}-r{request}");
                    let mut body = String::new();
                    for doc in 0..DOCS_PER_REQUEST {
                        body.push_str(&json!({"ts": 1_767_225_600 + doc as i64, "batch": batch, "body": "flood of log lines to index"}).to_string());
                        body.push('\n');
                    }
                    // Retry on 429 as a well-behaved client does, a bounded number of times.
                    for _attempt in 0..200 {
                        let response = http.post(format!("{endpoint}/api/v1/flood-logs/ingest")).body(body.clone()).send().await.unwrap();
                        if response.status() == 429 {
                            assert!(response.headers().contains_key("retry-after"));
                            throttled.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                        assert_eq!(response.status(), 200);
                        acked.lock().unwrap().insert(batch.clone(), true);
                        break;
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    flooding.store(false, Ordering::SeqCst);
    sampler.await.unwrap();

    let (status, body) = node
        .request(
            Method::POST,
            "/api/v1/flood-logs/ingest?commit=force",
            "application/x-ndjson",
            "",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let acked = acked.lock().unwrap().clone();
    let throttled = throttled.load(Ordering::SeqCst);
    let peak_rss = peak_rss.load(Ordering::SeqCst);
    println!(
        "acked batches: {} of {}, 429 answers: {throttled}, peak RSS: {} MiB",
        acked.len(),
        NUM_CLIENTS * REQUESTS_PER_CLIENT,
        peak_rss >> 20
    );
    assert!(throttled > 0, "the flood never hit the in-flight bound");
    assert!(
        peak_rss > 0 && peak_rss < MAX_RSS_BYTES,
        "peak RSS {peak_rss} over {MAX_RSS_BYTES}"
    );
    for batch in acked.keys() {
        assert_eq!(
            node.count("flood-logs", &format!("batch:{batch}")).await,
            DOCS_PER_REQUEST as u64,
            "batch {batch}"
        );
    }
    assert_eq!(
        node.count("flood-logs", "*").await,
        (acked.len() * DOCS_PER_REQUEST) as u64
    );
}
