//! The first searches on cold splits, behind storage that answers every GET 20 ms late (as
//! S3 does): what a query reads is fetched ahead, concurrently, so it costs a bounded number
//! of sequential round trips instead of one per range tantivy happens to read. Counted in
//! `/metrics`; latencies are measured by `bench/cold.sh`, not here.

mod common;

use common::TestNode;
use serde_json::{json, Value};

const INDEX_CONFIG: &str = "index_id: cold-logs
doc_mapping:
  field_mappings:
    - {name: timestamp, type: datetime, fast: true}
    - {name: severity_text, type: text, tokenizer: raw, fast: true}
    - {name: body, type: text, tokenizer: default, record: position}
    - {name: trace_id, type: text, tokenizer: raw}
  timestamp_field: timestamp
";

const NUM_DOCS: u64 = 30_000;

fn doc(n: u64) -> Value {
    let words = [
        "payment failed",
        "request served",
        "connection reset by peer",
        "cache warmed",
    ];
    let severity = ["INFO", "WARN", "ERROR"][(n % 3) as usize];
    json!({
        "timestamp": 1_767_225_600 + n / 10,
        "severity_text": severity,
        "body": format!("{} for order {n}", words[(n % 4) as usize]),
        "trace_id": format!("{:032x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Fetches {
    gets: u64,
    round_trips: u64,
    blocking_gets: u64,
}

async fn fetches(node: &TestNode) -> Fetches {
    let (_, metrics) = node.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|line| line.starts_with(&format!("quarry_{name} ")))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    Fetches {
        gets: value("searcher_storage_gets_total"),
        round_trips: value("searcher_storage_round_trips_total"),
        blocking_gets: value("searcher_storage_blocking_gets_total"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_searches_take_at_most_three_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::start_with(
        dir.path(),
        &[],
        "searcher:\n  simulated_get_latency_ms: 20\n  partial_result_cache_entries: 0\n",
    )
    .await;
    node.create_index(INDEX_CONFIG).await;
    let body: String = (0..NUM_DOCS).map(|n| doc(n).to_string() + "\n").collect();
    node.ingest("cold-logs", body, "force").await;
    // Nothing of the split is in memory any more.
    node.restart().await;

    let trace_id = doc(12_345)["trace_id"].as_str().unwrap().to_string();
    let queries = [
        // A narrow time window (10 s of 3,000), read from the postings of its seconds.
        json!({"query": "body:failed", "max_hits": 20, "start_timestamp": 1_767_225_700, "end_timestamp": 1_767_225_710}),
        // Top 20 by time: the term's dictionary block and postings, the timestamp column,
        // then the hits' doc-store blocks and log ids.
        json!({"query": "body:failed", "max_hits": 20}),
        json!({"query": "body:\"connection reset by peer\"", "max_hits": 20}),
        json!({"query": format!("trace_id:{trace_id}"), "max_hits": 20}),
        json!({"query": "severity_text:ERROR AND body:served", "max_hits": 5, "sort_by": "-timestamp"}),
    ];
    // The window holds documents 1,000 to 1,099, a quarter of which say "failed".
    let expected_hits = [25, NUM_DOCS / 4, NUM_DOCS / 4, 1, NUM_DOCS / 12];
    for (query, expected) in queries.iter().zip(expected_hits) {
        let before = fetches(&node).await;
        let answer = node.search("cold-logs", query.clone()).await;
        let after = fetches(&node).await;
        assert_eq!(answer["num_hits"], json!(expected), "{query}: {answer}");
        let hits = answer["hits"].as_array().unwrap();
        assert_eq!(
            hits.len() as u64,
            expected.min(20).min(query["max_hits"].as_u64().unwrap())
        );
        // Later queries may find their ranges fetched by earlier ones (64 KiB blocks).
        if query == &queries[0] {
            assert!(
                after.gets > before.gets,
                "the split was cold, yet nothing was fetched"
            );
        }
        assert_eq!(
            after.blocking_gets, before.blocking_gets,
            "{query}: the search waited for ranges the warmup did not fetch ({before:?} → {after:?})"
        );
        assert!(
            after.round_trips - before.round_trips <= 3,
            "{query}: {} round trips ({before:?} → {after:?})",
            after.round_trips - before.round_trips
        );
    }
    // Warm now: the same query fetches nothing.
    let before = fetches(&node).await;
    node.search("cold-logs", queries[1].clone()).await;
    assert_eq!(fetches(&node).await, before);
    node.stop();
}
