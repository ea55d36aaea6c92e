//! The walking skeleton end to end: create an index, ingest generated logs, check query
//! answers against counts computed independently from the same documents, restart, delete.

mod common;

use std::collections::HashSet;

use common::TestNode;
use quarry::demo_logs::LogGenerator;
use reqwest::Method;
use serde_json::{json, Value};

const NUM_DOCS: usize = 20_000;
/// 2026-01-01T00:00:00Z
const START_MICROS: i64 = 1_767_225_600_000_000;

const INDEX_CONFIG: &str = r#"
index_id: e2e-logs
doc_mapping:
  mode: dynamic
  field_mappings:
    - {name: timestamp, type: datetime, input_formats: [rfc3339], fast: true, fast_precision: microseconds}
    - {name: severity_text, type: text, tokenizer: raw, fast: true}
    - {name: service_name, type: text, tokenizer: raw, fast: true}
    - {name: host, type: text, tokenizer: raw}
    - {name: tenant_id, type: u64, fast: true}
    - {name: body, type: text, tokenizer: default, record: position}
    - {name: trace_id, type: text, tokenizer: raw}
    - {name: attributes, type: json, tokenizer: raw, fast: true}
  timestamp_field: timestamp
  tag_fields: [service_name]
search_settings:
  default_search_fields: [body]
"#;

fn generate() -> (String, Vec<Value>) {
    let mut generator = LogGenerator::new(7, START_MICROS, 100.0);
    let mut ndjson = String::new();
    for _ in 0..NUM_DOCS {
        generator.write_next_line(&mut ndjson);
    }
    let docs = ndjson
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (ndjson, docs)
}

/// Tokens as the `default` tokenizer makes them: alphanumeric runs, lowercased.
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn has_phrase(text: &str, phrase: &[&str]) -> bool {
    tokens(text)
        .windows(phrase.len())
        .any(|window| window.iter().zip(phrase).all(|(a, b)| a == b))
}

fn timestamp_secs(doc: &Value) -> i64 {
    let text = doc["timestamp"].as_str().unwrap();
    let parsed =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    parsed.unix_timestamp()
}

struct Oracle<'a>(&'a [Value]);

impl Oracle<'_> {
    fn count(&self, predicate: impl Fn(&Value) -> bool) -> u64 {
        self.0.iter().filter(|doc| predicate(doc)).count() as u64
    }
}

async fn check_answers(node: &TestNode, docs: &[Value]) {
    let oracle = Oracle(docs);
    let str_of = |doc: &Value, field: &str| doc[field].as_str().unwrap_or_default().to_string();
    let cases: Vec<(&str, u64)> = vec![
        ("*", NUM_DOCS as u64),
        (
            "severity_text:ERROR",
            oracle.count(|doc| str_of(doc, "severity_text") == "ERROR"),
        ),
        (
            "body:failed",
            oracle.count(|doc| tokens(&str_of(doc, "body")).contains(&"failed".to_string())),
        ),
        (
            "failed",
            oracle.count(|doc| tokens(&str_of(doc, "body")).contains(&"failed".to_string())),
        ),
        (
            "body:\"connection reset by peer\"",
            oracle.count(|doc| {
                has_phrase(&str_of(doc, "body"), &["connection", "reset", "by", "peer"])
            }),
        ),
        (
            "severity_text:ERROR AND service_name:payments",
            oracle.count(|doc| {
                str_of(doc, "severity_text") == "ERROR" && str_of(doc, "service_name") == "payments"
            }),
        ),
        (
            "body:failed AND NOT severity_text:INFO",
            oracle.count(|doc| {
                tokens(&str_of(doc, "body")).contains(&"failed".to_string())
                    && str_of(doc, "severity_text") != "INFO"
            }),
        ),
        (
            "(service_name:auth OR service_name:billing) -severity_text:DEBUG",
            oracle.count(|doc| {
                matches!(str_of(doc, "service_name").as_str(), "auth" | "billing")
                    && str_of(doc, "severity_text") != "DEBUG"
            }),
        ),
        (
            "tenant_id:[10 TO 20]",
            oracle.count(|doc| (10..=20).contains(&doc["tenant_id"].as_u64().unwrap())),
        ),
        (
            "tenant_id:{10 TO 20}",
            oracle.count(|doc| (11..20).contains(&doc["tenant_id"].as_u64().unwrap())),
        ),
        (
            "tenant_id:>=50",
            oracle.count(|doc| doc["tenant_id"].as_u64().unwrap() >= 50),
        ),
        (
            "attributes.http.status_code:500",
            oracle.count(|doc| doc["attributes"]["http.status_code"] == json!(500)),
        ),
        (
            "attributes.region:eu-west-1",
            oracle.count(|doc| doc["attributes"]["region"] == json!("eu-west-1")),
        ),
        (
            "trace_id:*",
            oracle.count(|doc| doc.get("trace_id").is_some()),
        ),
        (
            "service_name:pay*",
            oracle.count(|doc| str_of(doc, "service_name").starts_with("pay")),
        ),
        (
            "service_name:IN [auth cart]",
            oracle.count(|doc| matches!(str_of(doc, "service_name").as_str(), "auth" | "cart")),
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(
            node.count("e2e-logs", query).await,
            expected,
            "query `{query}`"
        );
    }

    // ES `bool`: beside `must`, `should` is optional unless `minimum_should_match` says.
    let failed = |doc: &Value| tokens(&str_of(doc, "body")).contains(&"failed".to_string());
    let warn_or_payments = |doc: &Value| {
        str_of(doc, "severity_text") == "WARN" || str_of(doc, "service_name") == "payments"
    };
    let should =
        json!([{"term": {"severity_text": "WARN"}}, {"term": {"service_name": "payments"}}]);
    let dsl_cases = [
        (
            json!({"bool": {"must": [{"match": {"body": "failed"}}], "should": should, "minimum_should_match": 1}}),
            oracle.count(|doc| failed(doc) && warn_or_payments(doc)),
        ),
        (
            json!({"bool": {"filter": [{"match": {"body": "failed"}}], "should": should, "minimum_should_match": 2}}),
            oracle.count(|doc| {
                failed(doc)
                    && str_of(doc, "severity_text") == "WARN"
                    && str_of(doc, "service_name") == "payments"
            }),
        ),
        (
            json!({"bool": {"must": [{"match": {"body": "failed"}}], "should": should}}),
            oracle.count(failed),
        ),
        (
            json!({"bool": {"should": should}}),
            oracle.count(warn_or_payments),
        ),
    ];
    for (query, expected) in dsl_cases {
        let (status, answer) = node
            .post_json(
                "/api/v1/_elastic/e2e-logs/_count",
                &json!({ "query": query }),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["count"], json!(expected), "query {query}");
    }

    // A time window: [start, end) in seconds.
    let start = timestamp_secs(&docs[5_000]);
    let end = timestamp_secs(&docs[15_000]);
    let expected = oracle.count(|doc| (start..end).contains(&timestamp_secs(doc)));
    let response = node
        .search(
            "e2e-logs",
            json!({"query": "*", "start_timestamp": start, "end_timestamp": end, "max_hits": 0}),
        )
        .await;
    assert_eq!(
        response["num_hits"].as_u64().unwrap(),
        expected,
        "time window"
    );
    let expected_errors = oracle.count(|doc| {
        (start..end).contains(&timestamp_secs(doc)) && str_of(doc, "severity_text") == "ERROR"
    });
    let response = node
        .search("e2e-logs", json!({"query": "severity_text:ERROR", "start_timestamp": start, "end_timestamp": end, "max_hits": 0}))
        .await;
    assert_eq!(
        response["num_hits"].as_u64().unwrap(),
        expected_errors,
        "time window + term"
    );

    // Default order: newest first, across splits.
    let response = node
        .search(
            "e2e-logs",
            json!({"query": "severity_text:WARN", "max_hits": 50}),
        )
        .await;
    let returned: Vec<String> = response["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| str_of(hit, "timestamp"))
        .collect();
    let mut expected_order: Vec<String> = docs
        .iter()
        .filter(|doc| str_of(doc, "severity_text") == "WARN")
        .map(|doc| str_of(doc, "timestamp"))
        .collect();
    expected_order.sort_by(|a, b| b.cmp(a));
    expected_order.truncate(50);
    assert_eq!(returned, expected_order, "newest first");

    // Ascending, with an offset.
    let response = node
        .search(
            "e2e-logs",
            json!({"query": "*", "max_hits": 5, "start_offset": 10, "sort_by": "timestamp"}),
        )
        .await;
    let returned: Vec<String> = response["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| str_of(hit, "timestamp"))
        .collect();
    let mut all: Vec<String> = docs.iter().map(|doc| str_of(doc, "timestamp")).collect();
    all.sort();
    assert_eq!(returned, all[10..15].to_vec(), "oldest first with offset");

    check_aggregations(node, docs).await;

    // Leaves over the deadline are reported, not waited for.
    let response = node
        .search(
            "e2e-logs",
            json!({"query": "body:failed", "max_hits": 5, "timeout_ms": 0}),
        )
        .await;
    let errors = response["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{response}");
    assert!(
        errors
            .iter()
            .all(|error| error.as_str().unwrap().contains("timed out after 0 ms")),
        "{response}"
    );

    // Snippets highlight the matched terms, one entry per hit.
    let response = node.search("e2e-logs", json!({"query": "body:failed AND severity_text:ERROR", "max_hits": 3, "snippet_fields": ["body"]})).await;
    let snippets = response["snippets"].as_array().unwrap();
    assert_eq!(snippets.len(), response["hits"].as_array().unwrap().len());
    for snippet in snippets {
        let fragment = snippet["body"][0].as_str().unwrap();
        assert!(
            fragment.to_lowercase().contains("<b>failed</b>"),
            "{fragment}"
        );
    }

    // Hits are the documents that were sent.
    let first = &docs[0];
    let trace = first.get("trace_id").and_then(Value::as_str);
    if let Some(trace) = trace {
        let response = node
            .search(
                "e2e-logs",
                json!({"query": format!("trace_id:{trace}"), "max_hits": 5}),
            )
            .await;
        assert_eq!(response["hits"].as_array().unwrap(), &vec![first.clone()]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_ingest_search_restart_delete() {
    let dir = tempfile::tempdir().unwrap();
    // Splits keep a segment per writer thread, as big ones do: every check below runs
    // over splits of several segments.
    let mut node =
        TestNode::start_with(dir.path(), &[], "indexer:\n  cut_merge_max_docs: 0\n").await;
    let (ndjson, docs) = generate();

    node.create_index(INDEX_CONFIG).await;
    let (status, conflict) = node
        .request(
            Method::POST,
            "/api/v1/indexes",
            "application/yaml",
            INDEX_CONFIG,
        )
        .await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"], json!("index `e2e-logs` already exists"));

    // Two batches, each forced into its own split.
    let lines: Vec<&str> = ndjson.lines().collect();
    for chunk in lines.chunks(NUM_DOCS / 2) {
        let body = chunk.join("\n");
        let (status, response) = node
            .request(
                Method::POST,
                "/api/v1/e2e-logs/ingest?commit=force",
                "application/x-ndjson",
                body,
            )
            .await;
        assert_eq!(status, 200, "{response}");
        assert_eq!(
            response["num_ingested_docs"].as_u64().unwrap(),
            (NUM_DOCS / 2) as u64
        );
        assert_eq!(response["num_rejected_docs"].as_u64().unwrap(), 0);
    }
    let (_, splits) = node.get("/api/v1/indexes/e2e-logs/splits").await;
    assert_eq!(splits["num_splits"], json!(2));
    let (_, described) = node.get("/api/v1/indexes/e2e-logs").await;
    assert_eq!(described["num_published_docs"], json!(NUM_DOCS));
    assert_eq!(described["num_published_splits"], json!(2));
    assert_eq!(
        common::segments_per_split(dir.path(), "e2e-logs"),
        [2, 2],
        "each writer thread wrote a segment"
    );

    check_answers(&node, &docs).await;
    node.restart().await;
    check_answers(&node, &docs).await;

    let index_dir = dir.path().join("qdata/indexes/e2e-logs");
    let split_files = |dir: &std::path::Path| -> HashSet<String> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok())
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        split_files(&index_dir)
            .iter()
            .filter(|name| name.ends_with(".split"))
            .count(),
        2
    );
    let (status, deleted) = node
        .request(
            Method::DELETE,
            "/api/v1/indexes/e2e-logs",
            "application/json",
            "",
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["deleted_splits"].as_array().unwrap().len(), 2);
    assert!(
        !index_dir.exists(),
        "left behind: {:?}",
        std::fs::read_dir(&index_dir).map(|entries| entries.count())
    );
    let (status, _) = node.get("/api/v1/indexes/e2e-logs").await;
    assert_eq!(status, 404);
    let (status, _) = node
        .request(
            Method::POST,
            "/api/v1/e2e-logs/search",
            "application/json",
            "{}",
        )
        .await;
    assert_eq!(status, 404);
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let strict = "index_id: strict-logs\ndoc_mapping:\n  mode: strict\n  field_mappings:\n    - {name: ts, type: datetime, fast: true}\n    - {name: level, type: text, tokenizer: raw}\n    - {name: n, type: u64}\n  timestamp_field: ts\n";
    node.create_index(strict).await;

    let body = "{\"ts\": \"2026-01-01T00:00:00Z\", \"level\": \"INFO\", \"n\": 1}\nnot json\n[1]\n{\"level\": \"WARN\"}\n{\"ts\": \"2026-01-01T00:00:01Z\", \"n\": \"many\"}\n{\"ts\": \"2026-01-01T00:00:02Z\", \"other\": 1}\n{\"ts\": 1767225603, \"level\": \"ERROR\"}\n";
    let (status, response) = node
        .request(
            Method::POST,
            "/api/v1/strict-logs/ingest?commit=force",
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(status, 200);
    insta::assert_json_snapshot!("ingest_with_rejections", response);
    assert_eq!(node.count("strict-logs", "*").await, 2);
    assert_eq!(node.count("strict-logs", "level:ERROR").await, 1);

    let mut errors = serde_json::Map::new();
    let requests: Vec<(&str, Method, &str, &str)> = vec![
        (
            "unknown field",
            Method::GET,
            "/api/v1/strict-logs/search?query=colour:red",
            "",
        ),
        (
            "syntax error",
            Method::GET,
            "/api/v1/strict-logs/search?query=level:(INFO",
            "",
        ),
        (
            "bad value type",
            Method::GET,
            "/api/v1/strict-logs/search?query=n:abc",
            "",
        ),
        (
            "unknown parameter",
            Method::GET,
            "/api/v1/strict-logs/search?query=*&colour=red",
            "",
        ),
        (
            "max hits over cap",
            Method::GET,
            "/api/v1/strict-logs/search?query=*&max_hits=20000",
            "",
        ),
        (
            "bad sort field",
            Method::GET,
            "/api/v1/strict-logs/search?query=*&sort_by=level",
            "",
        ),
        (
            "unknown index",
            Method::GET,
            "/api/v1/nope/search?query=*",
            "",
        ),
        (
            "bad commit mode",
            Method::POST,
            "/api/v1/strict-logs/ingest?commit=now",
            "{}",
        ),
        (
            "ingest unknown index",
            Method::POST,
            "/api/v1/nope/ingest",
            "{}",
        ),
        (
            "bad index config",
            Method::POST,
            "/api/v1/indexes",
            "index_id: x",
        ),
        (
            "invalid json search body",
            Method::POST,
            "/api/v1/strict-logs/search",
            "{\"query\": 1}",
        ),
        ("unknown route", Method::GET, "/api/v2/whatever", ""),
    ];
    for (name, method, path, body) in requests {
        let (status, response) = node
            .request(method, path, "application/yaml", body.to_string())
            .await;
        errors.insert(
            name.to_string(),
            json!({"status": status, "body": response}),
        );
    }
    insta::assert_json_snapshot!("error_responses", errors);

    // Over the 10 MiB default body limit: refused whole, nothing ingested.
    let big = "{\"ts\": 1767225600, \"level\": \"INFO\"}\n".repeat(11 * 1024 * 1024 / 36 + 1);
    let (status, response) = node
        .request(
            Method::POST,
            "/api/v1/strict-logs/ingest?commit=force",
            "application/x-ndjson",
            big,
        )
        .await;
    assert_eq!(status, 413, "{response}");
    assert!(response["error"].as_str().unwrap().contains("limit"));
    assert_eq!(node.count("strict-logs", "*").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elastic_bulk_answers_per_item() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let config = "index_id: bulk-logs\ndoc_mapping:\n  mode: strict\n  field_mappings:\n    - {name: ts, type: datetime, fast: true}\n    - {name: level, type: text, tokenizer: raw}\n  timestamp_field: ts\n";
    node.create_index(config).await;
    let body = [
        r#"{"index": {"_index": "bulk-logs", "_id": "a1"}}"#,
        r#"{"ts": "2026-01-01T00:00:00Z", "level": "INFO"}"#,
        r#"{"create": {"_id": "a2"}}"#,
        r#"{"ts": "2026-01-01T00:00:01Z", "level": "WARN"}"#,
        r#"{"index": {"_id": "bad-type"}}"#,
        r#"{"ts": "yesterday", "level": "INFO"}"#,
        r#"{"index": {"_index": "no-such-index", "_id": "lost"}}"#,
        r#"{"ts": "2026-01-01T00:00:02Z"}"#,
        r#"{"delete": {"_id": "a1"}}"#,
        r#"{"update": {"_id": "a2"}}"#,
        r#"{"doc": {"level": "ERROR"}}"#,
        r#"{"index": {"_id": "unknown-field"}}"#,
        r#"{"ts": "2026-01-01T00:00:03Z", "colour": "red"}"#,
    ]
    .join("\n")
        + "\n";
    let response = reqwest::Client::new()
        .put(format!(
            "{}/api/v1/_elastic/bulk-logs/_bulk?refresh=true",
            node.endpoint
        ))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
    let mut answer: Value = response.json().await.unwrap();
    answer["took"] = json!(0);
    insta::assert_json_snapshot!("bulk_mixed_items", answer);
    assert_eq!(node.count("bulk-logs", "*").await, 2);

    // Shippers compress: gzip bodies are accepted, a corrupt one is refused.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut encoder,
        b"{\"index\": {}}\n{\"ts\": \"2026-01-01T00:00:09Z\", \"level\": \"DEBUG\"}\n",
    )
    .unwrap();
    let compressed = encoder.finish().unwrap();
    let response = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/_elastic/bulk-logs/_bulk?refresh=true",
            node.endpoint
        ))
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(compressed.clone())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], json!(false), "{answer}");
    assert_eq!(node.count("bulk-logs", "level:DEBUG").await, 1);
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/bulk-logs/ingest", node.endpoint))
        .header("content-encoding", "gzip")
        .body(compressed[..compressed.len() / 2].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(node.count("bulk-logs", "*").await, 3);

    // `refresh` defaults to no wait; a malformed action line fails the whole request.
    let (status, malformed) = node
        .request(
            Method::POST,
            "/api/v1/_elastic/_bulk",
            "application/x-ndjson",
            "{\"index\": {\"_index\": \"bulk-logs\"}}\n{}\nnot-json\n",
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        malformed["error"]["type"],
        json!("illegal_argument_exception")
    );
    assert_eq!(node.count("bulk-logs", "*").await, 3);
}

/// Aggregations over two splits against the same computation over the raw documents.
async fn check_aggregations(node: &TestNode, docs: &[Value]) {
    let request = json!({
        "query": "*",
        "max_hits": 0,
        "aggs": {
            "by_service": {
                "terms": {"field": "service_name", "size": 50},
                "aggs": {"avg_tenant": {"avg": {"field": "tenant_id"}}}
            },
            "per_minute": {"date_histogram": {"field": "timestamp", "calendar_interval": "minute"}},
            "per_week": {"date_histogram": {"field": "timestamp", "calendar_interval": "week"}},
            "per_month": {"date_histogram": {"field": "timestamp", "calendar_interval": "month"}},
            "per_new_york_day": {"date_histogram": {"field": "timestamp", "calendar_interval": "day", "time_zone": "America/New_York"}},
            "per_kolkata_hour": {"date_histogram": {"field": "timestamp", "fixed_interval": "1h", "time_zone": "Asia/Kolkata"}},
            "per_local_hour": {"date_histogram": {"field": "timestamp", "fixed_interval": "1h", "time_zone": "-01:30"}},
            "avg_duration": {"avg": {"field": "attributes.duration_ms"}},
            "max_tenant": {"max": {"field": "tenant_id"}}
        }
    });
    let response = node.search("e2e-logs", request).await;
    let aggregations = &response["aggregations"];

    let mut by_service: std::collections::BTreeMap<String, (u64, f64)> = Default::default();
    for doc in docs {
        let entry = by_service
            .entry(doc["service_name"].as_str().unwrap().to_string())
            .or_default();
        entry.0 += 1;
        entry.1 += doc["tenant_id"].as_f64().unwrap();
    }
    let buckets = aggregations["by_service"]["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), by_service.len());
    let mut previous = u64::MAX;
    for bucket in buckets {
        let (count, sum) = by_service[bucket["key"].as_str().unwrap()];
        let doc_count = bucket["doc_count"].as_u64().unwrap();
        assert_eq!(doc_count, count, "{bucket}");
        assert!(doc_count <= previous, "buckets by descending count");
        previous = doc_count;
        let avg = bucket["avg_tenant"]["value"].as_f64().unwrap();
        assert!((avg - sum / count as f64).abs() < 1e-9, "{bucket}");
    }

    // Each date histogram against the documents counted into the bucket start the
    // expected rounding gives them (epoch milliseconds).
    let day_of = |secs: i64| secs.div_euclid(86_400);
    type BucketStart = Box<dyn Fn(i64) -> i64>;
    let histograms: [(&str, BucketStart); 6] = [
        ("per_minute", Box::new(|secs| secs.div_euclid(60) * 60)),
        // Calendar weeks start on Monday; 1970-01-01 (day 0) was a Thursday.
        (
            "per_week",
            Box::new(move |secs| ((day_of(secs) - 4).div_euclid(7) * 7 + 4) * 86_400),
        ),
        (
            "per_month",
            Box::new(|secs| {
                let date = time::OffsetDateTime::from_unix_timestamp(secs)
                    .unwrap()
                    .date();
                let start = time::Date::from_calendar_date(date.year(), date.month(), 1).unwrap();
                start.midnight().assume_utc().unix_timestamp()
            }),
        ),
        // Named zones: New York is UTC-5 in January, Kolkata UTC+5:30 all year.
        (
            "per_new_york_day",
            Box::new(|secs| (secs - 18_000).div_euclid(86_400) * 86_400 + 18_000),
        ),
        (
            "per_kolkata_hour",
            Box::new(|secs| (secs + 19_800).div_euclid(3_600) * 3_600 - 19_800),
        ),
        // In a -01:30 zone, hours start at half past in UTC.
        (
            "per_local_hour",
            Box::new(|secs| (secs - 5_400).div_euclid(3_600) * 3_600 + 5_400),
        ),
    ];
    for (name, bucket_start) in histograms {
        let mut expected: std::collections::BTreeMap<i64, u64> = Default::default();
        for doc in docs {
            *expected
                .entry(bucket_start(timestamp_secs(doc)) * 1_000)
                .or_default() += 1;
        }
        let actual: std::collections::BTreeMap<i64, u64> = aggregations[name]["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|bucket| {
                (
                    bucket["key"].as_f64().unwrap() as i64,
                    bucket["doc_count"].as_u64().unwrap(),
                )
            })
            .filter(|(_, count)| *count > 0)
            .collect();
        assert_eq!(actual, expected, "{name}");
    }

    let durations: Vec<f64> = docs
        .iter()
        .filter_map(|doc| doc["attributes"]["duration_ms"].as_f64())
        .collect();
    let expected_avg = durations.iter().sum::<f64>() / durations.len() as f64;
    assert!((aggregations["avg_duration"]["value"].as_f64().unwrap() - expected_avg).abs() < 1e-6);
    let max_tenant = docs
        .iter()
        .map(|doc| doc["tenant_id"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert_eq!(
        aggregations["max_tenant"]["value"].as_f64().unwrap(),
        max_tenant
    );

    check_more_aggregations(node, docs).await;
    check_volume_histograms(node, docs).await;

    let (status, body) = node
        .post_json(
            "/api/v1/e2e-logs/search",
            &json!({"query": "*", "aggs": {"x": {"terms": {"field": "body"}}}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not a fast field"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elastic_search_answers_in_elasticsearch_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let config = "index_id: grafana-logs\ndoc_mapping:\n  field_mappings:\n    - {name: testtime, type: datetime, fast: true, input_formats: [unix_timestamp_millis]}\n    - {name: label, type: text, tokenizer: raw, fast: true}\n    - {name: float, type: f64, fast: true}\n    - {name: line, type: text}\n  timestamp_field: testtime\n";
    node.create_index(config).await;
    // 40 events, 5 s apart, from 1668422437218 ms; labels alternate.
    let body: String = (0..40)
        .map(|i| json!({"testtime": 1_668_422_437_218i64 + i * 5_000, "label": if i % 2 == 0 { "even" } else { "odd" }, "float": i as f64 / 2.0, "line": format!("request {i} done")}).to_string() + "\n")
        .collect();
    node.ingest("grafana-logs", body, "force").await;

    let request = json!({
        "size": 3,
        "query": {"bool": {"filter": {"range": {"testtime": {"gte": 1_668_422_437_218i64, "lte": 1_668_422_537_218i64, "format": "epoch_millis"}}}}},
        "sort": [{"testtime": {"order": "desc", "unmapped_type": "boolean"}}, {"_doc": {"order": "desc"}}],
        "aggs": {
            "per_minute": {"date_histogram": {"field": "testtime", "fixed_interval": "1m", "min_doc_count": 0, "extended_bounds": {"min": 1_668_422_437_218i64, "max": 1_668_422_537_218i64}, "format": "epoch_millis"}},
            "labels": {"terms": {"field": "label"}, "aggs": {"avg_float": {"avg": {"field": "float"}}}}
        }
    });
    let response = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/_elastic/grafana-logs/_search?max_concurrent_shard_requests=5",
            node.endpoint
        ))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
    let status = response.status();
    let mut answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    answer["took"] = json!(0);
    for hit in answer["hits"]["hits"].as_array_mut().unwrap() {
        let id = hit["_id"].as_str().unwrap();
        assert!(
            quarry_common::doc_mapper::LogDocId::decode(id).is_some(),
            "a document sent without an id has its log id: {id}"
        );
        let tiebreaker = hit["sort"][1].as_str().unwrap();
        assert_eq!(
            tiebreaker.split(':').count(),
            3,
            "the tiebreaker is the hit's address: {tiebreaker}"
        );
        hit["_id"] = json!("<log id>");
        hit["sort"][1] = json!("<split:segment:doc>");
    }
    insta::assert_json_snapshot!("elastic_search_shape", answer);

    let (status, count) = node
        .post_json(
            "/api/v1/_elastic/grafana-logs/_count",
            &json!({"query": {"term": {"label": "odd"}}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(count["count"], json!(20));
    let (status, query_param) = node
        .get("/api/v1/_elastic/grafana-logs/_search?q=label:even%20AND%20line:request&size=0")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        query_param["hits"]["total"],
        json!({"value": 20, "relation": "eq"})
    );

    let (status, error) = node
        .post_json(
            "/api/v1/_elastic/grafana-logs/_search",
            &json!({"query": {"fuzzy": {"line": "x"}}}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        error["error"]["root_cause"][0]["type"],
        json!("illegal_argument_exception")
    );
    assert_eq!(error["status"], json!(400));
    let (status, missing) = node.get("/api/v1/_elastic/nope/_search").await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["type"], json!("index_not_found_exception"));
}

/// `{index}` takes comma lists, `*` patterns and `-exclusions`; hits and aggregations
/// merge across the indexes as across splits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_across_index_patterns() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    for (index, count) in [("app-logs-a", 3), ("app-logs-b", 5), ("other-logs", 7)] {
        let config = format!("index_id: {index}\ndoc_mapping:\n  field_mappings:\n    - {{name: ts, type: datetime, fast: true}}\n    - {{name: level, type: text, tokenizer: raw, fast: true}}\n  timestamp_field: ts\n");
        node.create_index(&config).await;
        let body: String = (0..count)
            .map(|i| json!({"ts": 1_767_225_600 + i, "level": "INFO"}).to_string() + "\n")
            .collect();
        let (status, _) = node
            .request(
                Method::POST,
                &format!("/api/v1/{index}/ingest?commit=force"),
                "application/x-ndjson",
                body,
            )
            .await;
        assert_eq!(status, 200);
    }
    assert_eq!(node.count("app-logs-a,app-logs-b", "*").await, 8);
    assert_eq!(node.count("app-logs-*", "level:INFO").await, 8);
    assert_eq!(node.count("*,-other-logs", "*").await, 8);
    assert_eq!(node.count("*-logs*", "*").await, 15);
    assert_eq!(node.count("nothing-*", "*").await, 0);
    let (status, _) = node
        .request(
            Method::POST,
            "/api/v1/app-logs-a,missing/search",
            "application/json",
            "{}",
        )
        .await;
    assert_eq!(status, 404);

    // Newest first across indexes, each hit naming its index.
    let request = json!({"query": {"match_all": {}}, "size": 3, "sort": [{"ts": "desc"}], "aggs": {"levels": {"terms": {"field": "level"}}}});
    let (status, answer) = node
        .post_json("/api/v1/_elastic/app-logs-*,other-logs/_search", &request)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["hits"]["total"]["value"], json!(15));
    let indexes: Vec<&str> = answer["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["_index"].as_str().unwrap())
        .collect();
    assert_eq!(indexes, ["other-logs", "other-logs", "app-logs-b"]);
    assert_eq!(
        answer["aggregations"]["levels"]["buckets"][0]["doc_count"],
        json!(15)
    );

    // The same search again is answered from the per-split result cache, identically.
    let (_, again) = node
        .post_json("/api/v1/_elastic/app-logs-*,other-logs/_search", &request)
        .await;
    assert_eq!(again["hits"], answer["hits"]);
    assert_eq!(again["aggregations"], answer["aggregations"]);
    let (_, metrics) = node.get("/metrics").await;
    let hits_line = metrics
        .as_str()
        .unwrap()
        .lines()
        .find(|line| line.starts_with("quarry_searcher_partial_result_cache_hits_total"))
        .unwrap()
        .to_string();
    let cached: u64 = hits_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(cached >= 3, "{hits_line}");
}

/// search_after walks every hit exactly once across splits, even through ties.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_after_walks_every_hit_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let config = "index_id: paged-logs\ndoc_mapping:\n  field_mappings:\n    - {name: ts, type: datetime, fast: true}\n    - {name: n, type: u64, fast: true}\n  timestamp_field: ts\n";
    node.create_index(config).await;
    // 120 docs over 3 splits, only 10 distinct timestamps: pages end inside ties.
    for batch in 0..3 {
        let body: String = (0..40)
            .map(|i| {
                json!({"ts": 1_767_225_600 + (i % 10), "n": batch * 40 + i}).to_string() + "\n"
            })
            .collect();
        node.ingest("paged-logs", body, "force").await;
    }
    // Small splits are merged into one segment when cut (`indexer.cut_merge_max_docs`).
    assert_eq!(
        common::segments_per_split(dir.path(), "paged-logs"),
        [1, 1, 1]
    );
    let hits = node
        .es_hits_after(
            "paged-logs",
            json!({"size": 7, "sort": [{"ts": "desc"}], "query": {"match_all": {}}}),
            |page, cursor| {
                if page % 2 == 1 {
                    // JavaScript clients send nanosecond dates as strings to keep them exact.
                    cursor[0] = json!(cursor[0].to_string());
                }
            },
        )
        .await;
    let mut previous_ts = i64::MAX;
    let mut seen = Vec::new();
    for hit in &hits {
        let sort_value = hit["sort"][0].as_i64().unwrap();
        assert!(sort_value <= previous_ts, "pages go newest first");
        previous_ts = sort_value;
        seen.push(hit["_source"]["n"].as_u64().unwrap());
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..120).collect::<Vec<u64>>(),
        "every hit exactly once"
    );

    // Several keys: newest first, then by `n` descending, paged through search_after.
    let mut expected: Vec<(u64, u64)> = (0..3)
        .flat_map(|batch| (0..40).map(move |i| (i % 10, batch * 40 + i)))
        .collect();
    expected.sort_by(|left, right| right.0.cmp(&left.0).then(right.1.cmp(&left.1)));
    let hits = node
        .es_hits_after(
            "paged-logs",
            json!({"size": 9, "sort": [{"ts": "desc"}, {"n": {"order": "desc"}}]}),
            |_, _| {},
        )
        .await;
    let walked: Vec<(u64, u64)> = hits
        .iter()
        .map(|hit| {
            let ts = (hit["sort"][0].as_i64().unwrap() / 1_000_000_000 - 1_767_225_600) as u64;
            assert_eq!(hit["sort"][1], hit["_source"]["n"], "{hit}");
            (ts, hit["_source"]["n"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(walked, expected);
    // The native API takes the same keys comma-separated.
    let native = node
        .search(
            "paged-logs",
            json!({"query": "*", "sort_by": "ts,-n", "max_hits": 5}),
        )
        .await;
    let first: Vec<u64> = native["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["n"].as_u64().unwrap())
        .collect();
    assert_eq!(first, vec![110, 100, 90, 80, 70]);
    assert_eq!(native["next_search_after"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elastic_meta_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    for index in ["logs-a", "logs-b", "metrics-a"] {
        node.create_index(&format!("index_id: {index}\n")).await;
    }
    let (status, resolved) = node
        .get("/api/v1/_elastic/_resolve/index/logs-*,-logs-b")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        resolved["indices"],
        json!([{"name": "logs-a", "attributes": ["open"]}])
    );
    let (status, cat) = node.get("/api/v1/_elastic/_cat/indices?format=json").await;
    assert_eq!(status, 200);
    assert_eq!(cat.as_array().unwrap().len(), 3);
    let (status, health) = node.get("/api/v1/_elastic/_cluster/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], json!("green"));
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/_elastic/_nodes/stats", node.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["type"],
        json!("unsupported_operation_exception")
    );
}

/// The other metric and bucket aggregations against the raw documents; approximate ones
/// (cardinality, percentiles) within their documented error.
/// The log-volume histogram (a date histogram by minute, optionally by a tag field, over
/// a time window) is read from each split's per-minute counts: its answer must be the
/// documents' own, including minutes the window cuts.
async fn check_volume_histograms(node: &TestNode, docs: &[Value]) {
    let metric = |metrics: &Value| -> u64 {
        metrics
            .as_str()
            .unwrap()
            .lines()
            .find(|line| line.starts_with("quarry_searcher_histograms_from_counts_total "))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|value| value.parse().ok())
            .unwrap()
    };
    let before = metric(&node.get("/metrics").await.1);
    let first = docs.iter().map(timestamp_secs).min().unwrap();
    let windows = [(None, None), (Some(first + 37), Some(first + 151))];
    for (start, end) in windows {
        let mut request = json!({
            "query": "*",
            "max_hits": 0,
            "aggs": {"volume": {
                "date_histogram": {"field": "timestamp", "fixed_interval": "1m"},
                "aggs": {"services": {"terms": {"field": "service_name", "size": 100}}}
            }}
        });
        if let (Some(start), Some(end)) = (start, end) {
            request["start_timestamp"] = json!(start);
            request["end_timestamp"] = json!(end);
        }
        let in_window = |doc: &&Value| {
            let secs = timestamp_secs(doc);
            start.is_none_or(|start| secs >= start) && end.is_none_or(|end| secs < end)
        };
        let mut expected: std::collections::BTreeMap<i64, std::collections::BTreeMap<String, u64>> =
            Default::default();
        for doc in docs.iter().filter(in_window) {
            *expected
                .entry(timestamp_secs(doc).div_euclid(60) * 60_000)
                .or_default()
                .entry(doc["service_name"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        let response = node.search("e2e-logs", request).await;
        assert_eq!(
            response["num_hits"].as_u64().unwrap(),
            docs.iter().filter(in_window).count() as u64
        );
        let mut actual: std::collections::BTreeMap<i64, std::collections::BTreeMap<String, u64>> =
            Default::default();
        for bucket in response["aggregations"]["volume"]["buckets"]
            .as_array()
            .unwrap()
        {
            let services = actual
                .entry(bucket["key"].as_f64().unwrap() as i64)
                .or_default();
            let mut total = 0;
            for service in bucket["services"]["buckets"].as_array().unwrap() {
                let count = service["doc_count"].as_u64().unwrap();
                services.insert(service["key"].as_str().unwrap().to_string(), count);
                total += count;
            }
            assert_eq!(bucket["doc_count"].as_u64().unwrap(), total, "{bucket}");
        }
        actual.retain(|_, services| !services.is_empty());
        assert_eq!(actual, expected, "window {start:?}..{end:?}");
    }
    let after = metric(&node.get("/metrics").await.1);
    assert!(
        after >= before + 2,
        "the counts answered {} split searches",
        after - before
    );
}

async fn check_more_aggregations(node: &TestNode, docs: &[Value]) {
    let request = json!({
        "query": "severity_text:ERROR",
        "max_hits": 0,
        "aggs": {
            "tenant_stats": {"stats": {"field": "tenant_id"}},
            "tenant_sum": {"sum": {"field": "tenant_id"}},
            "tenant_min": {"min": {"field": "tenant_id"}},
            "tenant_count": {"value_count": {"field": "tenant_id"}},
            "tenants_by_10": {"histogram": {"field": "tenant_id", "interval": 10}},
            "tenant_ranges": {"range": {"field": "tenant_id", "ranges": [{"to": 10}, {"from": 10, "to": 50}, {"from": 50}]}},
            "services": {"cardinality": {"field": "service_name"}},
            "duration_percentiles": {"percentiles": {"field": "attributes.duration_ms", "percents": [50, 99]}},
            "tenant_extended": {"extended_stats": {"field": "tenant_id"}},
            "per_service": {
                "terms": {"field": "service_name", "size": 3, "order": {"_key": "asc"}},
                "aggs": {"latest": {"top_hits": {"size": 2, "sort": [{"timestamp": "desc"}], "docvalue_fields": ["tenant_id"]}}}
            }
        }
    });
    let response = node.search("e2e-logs", request).await;
    let aggregations = &response["aggregations"];
    let errors: Vec<&Value> = docs
        .iter()
        .filter(|doc| doc["severity_text"] == json!("ERROR"))
        .collect();
    let tenants: Vec<f64> = errors
        .iter()
        .map(|doc| doc["tenant_id"].as_f64().unwrap())
        .collect();
    let sum: f64 = tenants.iter().sum();
    let stats = &aggregations["tenant_stats"];
    assert_eq!(stats["count"], json!(tenants.len()));
    assert_eq!(stats["sum"].as_f64().unwrap(), sum);
    assert_eq!(
        stats["min"].as_f64().unwrap(),
        tenants.iter().cloned().fold(f64::MAX, f64::min)
    );
    assert_eq!(
        stats["max"].as_f64().unwrap(),
        tenants.iter().cloned().fold(0.0, f64::max)
    );
    assert!((stats["avg"].as_f64().unwrap() - sum / tenants.len() as f64).abs() < 1e-9);
    assert_eq!(aggregations["tenant_sum"]["value"].as_f64().unwrap(), sum);
    assert_eq!(
        aggregations["tenant_count"]["value"].as_f64().unwrap(),
        tenants.len() as f64
    );
    assert_eq!(
        aggregations["tenant_min"]["value"].as_f64().unwrap(),
        stats["min"].as_f64().unwrap()
    );

    for bucket in aggregations["tenants_by_10"]["buckets"].as_array().unwrap() {
        let key = bucket["key"].as_f64().unwrap();
        let expected = tenants
            .iter()
            .filter(|tenant| **tenant >= key && **tenant < key + 10.0)
            .count();
        assert_eq!(
            bucket["doc_count"].as_u64().unwrap() as usize,
            expected,
            "{bucket}"
        );
    }
    let ranges = aggregations["tenant_ranges"]["buckets"].as_array().unwrap();
    let in_range = |from: f64, to: f64| {
        tenants
            .iter()
            .filter(|tenant| **tenant >= from && **tenant < to)
            .count() as u64
    };
    assert_eq!(
        ranges[0]["doc_count"].as_u64().unwrap(),
        in_range(f64::MIN, 10.0)
    );
    assert_eq!(
        ranges[1]["doc_count"].as_u64().unwrap(),
        in_range(10.0, 50.0)
    );
    assert_eq!(
        ranges[2]["doc_count"].as_u64().unwrap(),
        in_range(50.0, f64::MAX)
    );

    let count = tenants.len() as f64;
    let mean = sum / count;
    let variance = tenants.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / count;
    let extended = &aggregations["tenant_extended"];
    let close = |actual: &Value, expected: f64| {
        let actual = actual.as_f64().unwrap();
        assert!(
            (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
            "{actual} vs {expected}: {extended}"
        );
    };
    close(&extended["count"], count);
    close(
        &extended["sum_of_squares"],
        tenants.iter().map(|t| t * t).sum(),
    );
    close(&extended["variance"], variance);
    close(&extended["std_deviation"], variance.sqrt());
    close(
        &extended["std_deviation_bounds"]["upper"],
        mean + 2.0 * variance.sqrt(),
    );

    // top_hits: per service (first three by name), the two newest errors.
    let mut services: Vec<&str> = errors
        .iter()
        .map(|doc| doc["service_name"].as_str().unwrap())
        .collect();
    services.sort();
    services.dedup();
    let buckets = aggregations["per_service"]["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), services.len().min(3));
    for (bucket, service) in buckets.iter().zip(&services) {
        assert_eq!(bucket["key"], json!(service));
        let mut newest: Vec<i64> = errors
            .iter()
            .filter(|doc| doc["service_name"] == json!(service))
            .map(|doc| timestamp_secs(doc))
            .collect();
        newest.sort_by(|left, right| right.cmp(left));
        newest.truncate(2);
        let hits = bucket["latest"]["hits"]["hits"]
            .as_array()
            .unwrap_or_else(|| panic!("{bucket}"));
        let seconds: Vec<i64> = hits
            .iter()
            .map(|hit| hit["sort"][0].as_i64().unwrap_or_else(|| panic!("{hit}")) / 1_000_000_000)
            .collect();
        assert_eq!(seconds, newest, "{bucket}");
        assert_eq!(
            bucket["latest"]["hits"]["total"]["value"],
            bucket["doc_count"]
        );
        for hit in hits {
            assert!(hit["fields"]["tenant_id"].is_array(), "{hit}");
        }
    }

    let distinct_services: std::collections::HashSet<&str> = errors
        .iter()
        .map(|doc| doc["service_name"].as_str().unwrap())
        .collect();
    let cardinality = aggregations["services"]["value"].as_f64().unwrap();
    assert!(
        (cardinality - distinct_services.len() as f64).abs() <= 1.0,
        "cardinality {cardinality}"
    );

    let mut durations: Vec<f64> = errors
        .iter()
        .filter_map(|doc| doc["attributes"]["duration_ms"].as_f64())
        .collect();
    durations.sort_by(f64::total_cmp);
    let exact =
        |percent: f64| durations[((durations.len() - 1) as f64 * percent / 100.0).round() as usize];
    for (percent, key) in [(50.0, "50.0"), (99.0, "99.0")] {
        let estimate = aggregations["duration_percentiles"]["values"][key]
            .as_f64()
            .unwrap();
        let expected = exact(percent);
        // DDSketch keeps a 1% relative error; neighbouring ranks add a little more here.
        assert!(
            (estimate - expected).abs() <= expected * 0.03 + 5.0,
            "p{percent}: {estimate} vs {expected}"
        );
    }
}

/// `quarry ingest` cuts a file into batches of whole lines, sends a line longer than a
/// batch on its own, keeps a last line without a newline, and reports rejected lines by
/// their number in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_ingest_cuts_files_into_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let config = "index_id: cli-logs\ndoc_mapping:\n  mode: strict\n  field_mappings:\n    - {name: ts, type: datetime, fast: true}\n    - {name: n, type: u64, fast: true}\n    - {name: body, type: text}\n  timestamp_field: ts\n";
    node.create_index(config).await;
    let mut lines: Vec<String> = (0..3_000)
        .map(|n| json!({"ts": 1_767_225_600 + n, "n": n, "body": "x".repeat(900)}).to_string())
        .collect();
    // Longer than the 1 MiB batches, in the middle of the file.
    lines[1_500] =
        json!({"ts": 1_767_225_600, "n": 1_500, "body": "y".repeat(1_500_000)}).to_string();
    // Rejected lines, past the first batch: numbers count from the file's start.
    lines[2_499] = "{not json".to_string();
    lines[2_999] = json!({"ts": 1, "n": -1}).to_string();
    let input = dir.path().join("input.ndjson");
    std::fs::write(&input, lines.join("\n")).unwrap();

    let endpoint = node.endpoint.clone();
    // The CLI blocks until it is done: off the test's async threads.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_quarry"))
            .args(["ingest", "--endpoint", &endpoint, "--index", "cli-logs"])
            .args(["--batch-size-mib", "1", "--input-path"])
            .arg(&input)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "rejections make the command fail");
    assert!(stdout.contains("Ingested 2998 documents"), "{stdout}");
    assert!(stderr.contains("line 2500: invalid JSON"), "{stderr}");
    assert!(stderr.contains("line 3000: field `n`"), "{stderr}");
    assert_eq!(node.count("cli-logs", "*").await, 2_998);
    assert_eq!(node.count("cli-logs", "n:1500").await, 1);
    assert_eq!(node.count("cli-logs", "n:2998").await, 1);
}

/// Bytes fields are queried with values written as in documents: base64 by default, hex
/// when the mapping says so (trace ids), in either case of hex digits.
#[tokio::test]
async fn bytes_fields_are_queried_as_documents_write_them() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let config = "index_id: trace-logs\ndoc_mapping:\n  mode: strict\n  field_mappings:\n    - {name: ts, type: datetime, fast: true}\n    - {name: trace_id, type: bytes, input_format: hex, output_format: hex}\n    - {name: blob, type: bytes}\n  timestamp_field: ts\n";
    node.create_index(config).await;
    let docs = [
        json!({"ts": 1, "trace_id": "8fadc1a606cb0fb39a1de644815ef6d1", "blob": "aGVsbG8="}),
        json!({"ts": 2, "trace_id": "00000000000000000000000000000001", "blob": "d29ybGQ="}),
    ];
    let ndjson: String = docs.iter().map(|doc| format!("{doc}\n")).collect();
    node.ingest("trace-logs", ndjson, "force").await;

    assert_eq!(
        node.count("trace-logs", "trace_id:8fadc1a606cb0fb39a1de644815ef6d1")
            .await,
        1
    );
    assert_eq!(
        node.count("trace-logs", "trace_id:8FADC1A606CB0FB39A1DE644815EF6D1")
            .await,
        1
    );
    assert_eq!(node.count("trace-logs", "blob:aGVsbG8=").await, 1);
    let found = node
        .search("trace-logs", json!({"query": "blob:\"d29ybGQ=\""}))
        .await;
    assert_eq!(
        found["hits"][0]["trace_id"],
        json!("00000000000000000000000000000001")
    );
    let (status, error) = node
        .post_json(
            "/api/v1/trace-logs/search",
            &json!({"query": "trace_id:xyz"}),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(
        error["error"],
        json!("invalid query: `xyz` is not hex-encoded bytes, the type of field `trace_id`")
    );
}
