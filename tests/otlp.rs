//! OTLP/HTTP logs against a real node with authentication on: the OpenTelemetry Python SDK
//! (its logging handler and OTLP/HTTP exporter, installed in a venv by
//! `tests/otel-python/run.sh`) exports records with attributes, a trace context and a
//! resource; OTLP/JSON bodies; bad input; and an exporter held back with 429 by its key's
//! ingest limit, which retries and loses nothing.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::TestNode;
use serde_json::{json, Value};

const ADMIN_ID: &str = "otel-admin";
const ADMIN_SECRET: &str = "a-secret-for-the-otlp-tests-0123456789abcdef";

fn admin_credential() -> String {
    quarry_common::api_keys::encode_credential(ADMIN_ID, ADMIN_SECRET)
}

struct Client {
    endpoint: String,
    http: reqwest::Client,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.endpoint))
            .header("authorization", format!("ApiKey {}", admin_credential()))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.bytes().await.unwrap().to_vec())
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let (status, _, body) = self
            .send(
                method,
                path,
                "application/json",
                body.to_string().into_bytes(),
            )
            .await;
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert!(status < 300, "{path}: {status} {answer}");
        answer
    }

    /// Searches until `query` has `expected` hits (commits run every few seconds).
    async fn wait_for_hits(&self, index: &str, query: &str, expected: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self
                .json(
                    reqwest::Method::POST,
                    &format!("/api/v1/{index}/search"),
                    json!({"query": query, "max_hits": 1}),
                )
                .await;
            if answer["num_hits"] == json!(expected) || Instant::now() > deadline {
                assert_eq!(
                    answer["num_hits"],
                    json!(expected),
                    "{index} {query}: {answer}"
                );
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn run_sdk(endpoint: &str, index: &str, count: usize, batch: usize, key: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otel-python/run.sh");
    let output = Command::new("bash")
        .arg(script)
        .args([endpoint, index, &count.to_string(), &batch.to_string()])
        .env("QUARRY_API_KEY", key)
        .output()
        .expect("run tests/otel-python/run.sh");
    assert!(
        output.status.success(),
        "the OpenTelemetry SDK run failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_logs_from_the_python_sdk_json_and_bad_input() {
    if Command::new("python3").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run the OpenTelemetry SDK: python3 is missing"
        );
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::start_secured_with_admin(
        &dir.path().join("node"),
        "otlp",
        ADMIN_ID,
        ADMIN_SECRET,
        "",
    )
    .await;
    let client = Client {
        endpoint: node.endpoint.clone(),
        http: reqwest::Client::new(),
    };

    // The SDK, in protobuf, into the default index (created on first export).
    let endpoint = node.endpoint.clone();
    let trace_id = tokio::task::spawn_blocking(move || {
        run_sdk(&endpoint, "otel-logs-v0_9", 3_000, 512, &admin_credential())
    })
    .await
    .unwrap();
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    client.wait_for_hits("otel-logs-v0_9", "*", 3_000).await;
    client
        .wait_for_hits("otel-logs-v0_9", "severity_number:13", 300)
        .await;
    // Terms without a field search `body.message`, as in Quickwit's OTEL logs index.
    client
        .wait_for_hits("otel-logs-v0_9", "declined", 300)
        .await;
    client
        .wait_for_hits(
            "otel-logs-v0_9",
            "service_name:checkout AND resource_attributes.deployment.environment:ci",
            3_000,
        )
        .await;
    client
        .wait_for_hits("otel-logs-v0_9", &format!("trace_id:{trace_id}"), 3_000)
        .await;
    let hit = client
        .wait_for_hits("otel-logs-v0_9", "body.message:\"payment 42 accepted\"", 1)
        .await;
    let hit = &hit["hits"][0];
    assert_eq!(hit["attributes"]["order_id"], 42, "{hit}");
    assert_eq!(hit["severity_number"], 9, "{hit}");
    assert_eq!(hit["scope_name"], "quarry.otel.test", "{hit}");
    assert_eq!(hit["span_id"].as_str().map(str::len), Some(16), "{hit}");

    // OTLP/JSON, with a map body, an unknown severity refused alone, and a named index.
    let export = json!({"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
    "scopeLogs": [{"scope": {"name": "json-client"}, "logRecords": [
        {"timeUnixNano": "1767225600000000000", "severityNumber": 9, "severityText": "INFO", "body": {"stringValue": "user login ok"}},
        {"timeUnixNano": "1767225601000000000", "severityNumber": 13, "body": {"kvlistValue": {"values": [{"key": "event", "value": {"stringValue": "login"}}, {"key": "attempts", "value": {"intValue": "3"}}]}}},
        {"timeUnixNano": "1767225602000000000", "severityNumber": 99, "body": {"stringValue": "from another planet"}}
    ]}]}]});
    let (status, _, body) = client
        .send(
            reqwest::Method::POST,
            "/api/v1/otlp/v1/logs",
            "application/json",
            export.to_string().into_bytes(),
        )
        .await;
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{answer}");
    // OTLP/JSON writes 64-bit integers as strings; either form is one record.
    let rejected = &answer["partialSuccess"]["rejectedLogRecords"];
    assert!(rejected == &json!("1") || rejected == &json!(1), "{answer}");
    assert!(answer["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("severity_number 99"));
    client
        .wait_for_hits("otel-logs-v0_9", "service_name:api", 2)
        .await;
    client
        .wait_for_hits("otel-logs-v0_9", "body.event:login AND body.attempts:3", 1)
        .await;

    // Bad payloads: a Status in the request's encoding; nothing acknowledged is lost.
    let (status, headers, body) = client
        .send(
            reqwest::Method::POST,
            "/api/v1/otlp/v1/logs",
            "application/x-protobuf",
            vec![0x0a, 0xff, 0xff, 0x03],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(headers["content-type"], "application/x-protobuf");
    assert!(String::from_utf8_lossy(&body).contains("ExportLogsServiceRequest"));
    let (status, _, _) = client
        .send(
            reqwest::Method::POST,
            "/api/v1/otlp/v1/logs",
            "text/plain",
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(status, 415);
    let huge = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"key": "blob", "value": {"stringValue": "x".repeat(11 << 20)}}]}]}]}]});
    let (status, _, _) = client
        .send(
            reqwest::Method::POST,
            "/api/v1/otlp/v1/logs",
            "application/json",
            huge.to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 413);
    client.wait_for_hits("otel-logs-v0_9", "*", 3_002).await;

    // An exporter over its key's ingest limit gets 429 with Retry-After, retries, and
    // every record arrives once.
    let limited = client
        .json(
            reqwest::Method::POST,
            "/api/v1/api-keys",
            json!({"name": "slow-exporter",
                   "role_descriptors": {"w": {"indices": [{"names": ["otel-throttled"], "privileges": ["write"]}]}},
                   "limits": {"ingest_bytes_per_second": 40000}}),
        )
        .await;
    let limited_key = limited["encoded"].as_str().unwrap().to_string();
    let endpoint = node.endpoint.clone();
    tokio::task::spawn_blocking(move || {
        run_sdk(&endpoint, "otel-throttled", 1_000, 100, &limited_key)
    })
    .await
    .unwrap();
    client.wait_for_hits("otel-throttled", "*", 1_000).await;
    let (_, _, metrics) = client
        .send(reqwest::Method::GET, "/metrics", "text/plain", Vec::new())
        .await;
    let throttled: f64 = String::from_utf8_lossy(&metrics)
        .lines()
        .filter(|line| line.starts_with("quarry_tenant_throttled_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        throttled > 0.0,
        "the exporter was never held back, so its retries were not tested"
    );
    node.stop();
}
