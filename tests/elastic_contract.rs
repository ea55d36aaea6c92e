//! The requests Grafana's Elasticsearch datasource sends (`tests/fixtures/grafana`),
//! answered in the shapes Grafana parses.

mod common;

use std::path::PathBuf;

use common::TestNode;
use serde_json::{json, Value};

const START_MS: i64 = 1_668_422_437_218;
const END_MS: i64 = 1_668_422_625_668;
const NUM_DOCS: i64 = 300;

/// The request bodies, kept in the repository (`tests/fixtures/grafana/README.md`).
fn contract_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grafana")
}

fn check_hits_total(response: &Value) {
    let total = &response["hits"]["total"];
    assert!(
        total["value"].is_u64() && total["relation"] == json!("eq"),
        "hits.total must be an object: {response}"
    );
}

/// Every bucket has an integer epoch-ms or string key, a doc_count, and metrics as {"value"}.
fn check_buckets(aggregation: &Value) {
    for bucket in aggregation["buckets"].as_array().into_iter().flatten() {
        assert!(bucket["doc_count"].is_u64(), "{bucket}");
        assert!(
            bucket["key"].is_i64() || bucket["key"].is_string(),
            "{bucket}"
        );
        if bucket["key"].is_i64() {
            assert!(bucket["key_as_string"].is_string(), "{bucket}");
        }
        for (name, value) in bucket.as_object().unwrap() {
            if value.get("buckets").is_some() {
                check_buckets(value);
            } else if value.is_object() && !["key", "doc_count"].contains(&name.as_str()) {
                assert!(
                    value.get("value").is_some(),
                    "metric `{name}` must be {{\"value\": …}}: {bucket}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_requests_get_elasticsearch_shapes() {
    let dir = contract_dir();
    let tmp = tempfile::tempdir().unwrap();
    let node = TestNode::start(tmp.path()).await;
    let config = "index_id: grafana-logs\ndoc_mapping:\n  field_mappings:\n    - {name: testtime, type: datetime, fast: true, input_formats: [unix_timestamp_millis], fast_precision: milliseconds}\n    - {name: label, type: text, tokenizer: raw, fast: true}\n    - {name: float, type: f64, fast: true}\n    - {name: line, type: text}\n  timestamp_field: testtime\n";
    node.create_index(config).await;
    let step = (END_MS - START_MS) / NUM_DOCS;
    let body: String = (0..NUM_DOCS)
        .map(|i| {
            let label = ["gold", "silver", "bronze"][i as usize % 3];
            json!({"testtime": START_MS + i * step, "label": label, "float": i as f64 * 0.5, "line": format!("event {i}")}).to_string() + "\n"
        })
        .collect();
    node.ingest("grafana-logs", body, "force").await;

    // What Grafana checks when the datasource is saved.
    let (status, info) = node.get("/api/v1/_elastic/").await;
    assert_eq!(status, 200);
    assert!(info["version"]["number"].as_str().unwrap().starts_with('8'));
    let (_, mapping) = node.get("/api/v1/_elastic/grafana-logs/_mapping").await;
    assert_eq!(
        mapping["grafana-logs"]["mappings"]["properties"]["testtime"]["type"],
        json!("date_nanos")
    );
    assert_eq!(
        mapping["grafana-logs"]["mappings"]["properties"]["label"]["type"],
        json!("keyword")
    );
    let (_, caps) = node
        .get("/api/v1/_elastic/grafana-logs/_field_caps?fields=*")
        .await;
    assert_eq!(
        caps["fields"]["float"]["double"]["aggregatable"],
        json!(true)
    );

    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let request: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let header = json!({"search_type": "query_then_fetch", "ignore_unavailable": true, "index": "grafana-logs"});
        let ndjson = format!("{header}\n{request}\n");
        let response = reqwest::Client::new()
            .post(format!(
                "{}/api/v1/_elastic/_msearch?max_concurrent_shard_requests=5",
                node.endpoint
            ))
            .header("content-type", "application/x-ndjson")
            .body(ndjson)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        let responses = answer["responses"].as_array().unwrap();
        assert_eq!(responses.len(), 1);
        let response = &responses[0];
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(response["status"], json!(200), "{name}: {response}");
        check_hits_total(response);
        assert_eq!(
            response["hits"]["total"]["value"],
            json!(NUM_DOCS),
            "{name}"
        );
        if let Some(aggregations) = response.get("aggregations").and_then(Value::as_object) {
            for aggregation in aggregations.values() {
                check_buckets(aggregation);
            }
        }
        let hits = response["hits"]["hits"].as_array().unwrap();
        if request["size"].as_u64().unwrap_or(10) > 0 {
            assert_eq!(hits.len(), NUM_DOCS as usize, "{name}");
            let first = &hits[0];
            assert!(
                first["_id"].is_string()
                    && first["_index"] == json!("grafana-logs")
                    && first["_source"].is_object(),
                "{name}: {first}"
            );
            // Newest first, as the request's sort says.
            assert!(
                first["sort"][0].as_i64().unwrap() >= hits[1]["sort"][0].as_i64().unwrap(),
                "{name}"
            );
            if request.get("docvalue_fields").is_some() {
                assert!(first["fields"]["testtime"].is_array(), "{name}: {first}");
            }
        }
        println!("{name}: ok");
    }

    // Extended bounds with min_doc_count 0: a bucket for every minute of the range.
    let metric: Value =
        serde_json::from_slice(&std::fs::read(dir.join("metric_simple.json")).unwrap()).unwrap();
    let (status, answer) = node
        .post_json("/api/v1/_elastic/grafana-logs/_search", &metric)
        .await;
    assert_eq!(status, 200, "{answer}");
    let per_label = answer["aggregations"]["3"]["buckets"].as_array().unwrap();
    assert_eq!(
        per_label
            .iter()
            .map(|bucket| bucket["key"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["silver", "gold", "bronze"],
        "ordered by key desc"
    );
    let minutes = per_label[0]["2"]["buckets"].as_array().unwrap();
    let first_minute = START_MS / 60_000 * 60_000;
    let last_minute = END_MS / 60_000 * 60_000;
    assert_eq!(
        minutes.len() as i64,
        (last_minute - first_minute) / 60_000 + 1
    );
    assert_eq!(minutes[0]["key"], json!(first_minute));
}
