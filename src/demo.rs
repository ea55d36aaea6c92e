//! `quarry run --demo`: creates `demo-logs` and loads generated events once, so a new user
//! can search right away.

use bytes::Bytes;
use quarry_config::ConfigFormat;
use quarry_indexer::CommitMode;
use tracing::info;

use crate::demo_logs::LogGenerator;
use crate::node::Node;

pub const DEMO_INDEX_ID: &str = "demo-logs";
const DEMO_NUM_DOCS: usize = 200_000;
/// Batches of this many lines keep each request far below the body limit.
const DEMO_BATCH_DOCS: usize = 10_000;
/// The demo's events cover the two hours before it is loaded.
const DEMO_SPAN_SECS: i64 = 2 * 3600;

pub const DEMO_INDEX_CONFIG: &str = r#"
version: 0.1
index_id: demo-logs
doc_mapping:
  mode: dynamic
  field_mappings:
    - {name: timestamp, type: datetime, input_formats: [rfc3339], fast: true, fast_precision: microseconds}
    - {name: severity_text, type: text, tokenizer: raw, fast: true}
    - {name: service_name, type: text, tokenizer: raw, fast: true}
    - {name: host, type: text, tokenizer: raw, fast: true}
    - {name: tenant_id, type: u64, fast: true}
    - {name: body, type: text, tokenizer: default, record: position}
    - {name: trace_id, type: text, tokenizer: raw}
    - {name: attributes, type: json, tokenizer: raw, fast: true}
  timestamp_field: timestamp
  tag_fields: [service_name, severity_text]
search_settings:
  default_search_fields: [body]
indexing_settings:
  commit_timeout_secs: 10
"#;

/// Creates the demo index and loads it, unless it already holds documents.
pub async fn load_demo(node: &Node) -> anyhow::Result<()> {
    let index_service = &node.index_service;
    let exists = index_service
        .list_indexes()
        .await?
        .iter()
        .any(|index| index.index_id() == DEMO_INDEX_ID);
    if !exists {
        index_service
            .create_index(DEMO_INDEX_CONFIG.as_bytes(), ConfigFormat::Yaml)
            .await?;
    }
    let description = index_service.describe_index(DEMO_INDEX_ID).await?;
    if description.num_published_docs > 0 {
        info!(
            num_docs = description.num_published_docs,
            "demo index already loaded"
        );
        return Ok(());
    }
    let now_micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as i64)
        .unwrap_or_default();
    let rate = DEMO_NUM_DOCS as f64 / DEMO_SPAN_SECS as f64;
    let mut generator = LogGenerator::new(42, now_micros - DEMO_SPAN_SECS * 1_000_000, rate);
    println!("Loading {DEMO_NUM_DOCS} demo log events into `{DEMO_INDEX_ID}`…");
    let started = std::time::Instant::now();
    let mut loaded = 0;
    while loaded < DEMO_NUM_DOCS {
        let batch_len = DEMO_BATCH_DOCS.min(DEMO_NUM_DOCS - loaded);
        let mut body = String::with_capacity(batch_len * 300);
        for _ in 0..batch_len {
            generator.write_next_line(&mut body);
        }
        loaded += batch_len;
        // The last batch forces a split, so the demo is searchable when this returns.
        let commit = if loaded == DEMO_NUM_DOCS {
            CommitMode::Force
        } else {
            CommitMode::Auto
        };
        let response = node
            .ingest_service
            .ingest(DEMO_INDEX_ID, Bytes::from(body), commit)
            .await?;
        if response.num_rejected_docs > 0 {
            anyhow::bail!(
                "the demo generator produced rejected documents: {:?}",
                response.parse_failures.first()
            );
        }
    }
    println!(
        "Loaded {DEMO_NUM_DOCS} events in {:.1}s.",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn print_examples(endpoint: &str) {
    println!(
        r#"
Quarry is running on {endpoint} with the `{DEMO_INDEX_ID}` index.

Open the web UI in a browser:

  {endpoint}/ui/

  or go straight to the errors of the payments service:
  {endpoint}/ui/?index={DEMO_INDEX_ID}&query=severity_text%3AERROR%20AND%20service_name%3Apayments

From a terminal:

  curl '{endpoint}/api/v1/{DEMO_INDEX_ID}/search?query=severity_text:ERROR%20AND%20service_name:payments&max_hits=3'

  curl -XPOST '{endpoint}/api/v1/{DEMO_INDEX_ID}/search' -H 'Content-Type: application/json' \
       -d '{{"query": "\"connection reset by peer\"", "max_hits": 3}}'

  cargo run --release -- search --index {DEMO_INDEX_ID} --query 'attributes.http.status_code:500 AND NOT severity_text:INFO' --max-hits 3

Stop it with Ctrl-C.
"#
    );
}
