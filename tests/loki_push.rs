//! Loki's push API against a real node: protobuf+snappy bodies built with `prost` and
//! `snap` from Loki's published `push.proto`, JSON bodies through curl, and bad input that
//! is refused without losing what was acknowledged.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::TestNode;
use reqwest::Method;

// Loki's `push.proto` (package logproto), as a Loki client builds it.
#[derive(Clone, PartialEq, prost::Message)]
struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StreamAdapter {
    #[prost(string, tag = "1")]
    labels: String,
    #[prost(message, repeated, tag = "2")]
    entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    hash: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    line: String,
    #[prost(message, repeated, tag = "3")]
    structured_metadata: Vec<LabelPairAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Timestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

const START: i64 = 1_767_225_600;

fn protobuf_push(job: &str, lines: usize) -> Vec<u8> {
    let entries = (0..lines)
        .map(|n| EntryAdapter {
            timestamp: Some(Timestamp {
                seconds: START + n as i64,
                nanos: 123_456_789,
            }),
            line: format!(
                "GET /api/items/{n} status={}",
                if n % 4 == 0 { 500 } else { 200 }
            ),
            structured_metadata: vec![LabelPairAdapter {
                name: "trace_id".to_string(),
                value: format!("trace-{n}"),
            }],
        })
        .collect();
    let request = PushRequest {
        streams: vec![StreamAdapter {
            labels: format!(r#"{{job="{job}", host="web-1", line="a label named line"}}"#),
            entries,
            hash: 0,
        }],
    };
    snap::raw::Encoder::new()
        .compress_vec(&prost::Message::encode_to_vec(&request))
        .unwrap()
}

async fn push(
    node: &TestNode,
    content_type: &str,
    index: Option<&str>,
    body: Vec<u8>,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/loki/api/v1/push", node.endpoint))
        .header("content-type", content_type)
        .body(body);
    if let Some(index) = index {
        request = request.header("x-quarry-index", index);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// curl, as a user following Loki's docs would push JSON: the status code it got.
fn curl_json(endpoint: &str, index: &str, body: &str) -> Option<String> {
    let mut child = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", "Content-Type: application/json", "-H"])
        .arg(format!("X-Quarry-Index: {index}"))
        .args(["--data-binary", "@-"])
        .arg(format!("{endpoint}/loki/api/v1/push"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(body.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    Some(String::from_utf8_lossy(&output.stdout).to_string())
}

#[tokio::test]
async fn loki_pushes_in_protobuf_and_json_become_searchable_documents() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;

    // Protobuf, snappy: into the default index, created on first push.
    let (status, body) = push(
        &node,
        "application/x-protobuf",
        None,
        protobuf_push("varlogs", 40),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = push(
        &node,
        "application/x-protobuf",
        None,
        protobuf_push("nginx", 20),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, description) = node.get("/api/v1/indexes/loki-logs").await;
    assert_eq!(status, 200, "{description}");
    assert_eq!(description["timestamp_field"], "timestamp");

    // Bad input is refused in words, and nothing acknowledged is lost.
    let mut truncated = protobuf_push("varlogs", 10);
    truncated.truncate(truncated.len() / 2);
    let (status, body) = push(&node, "application/x-protobuf", None, truncated).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = push(&node, "text/plain", None, b"hello".to_vec()).await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = push(
        &node,
        "application/json",
        None,
        br#"{"streams": [{"stream": {"job": "x"}, "values": [["yesterday", "a line"]]}]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("yesterday"), "{body}");
    let (status, body) = push(
        &node,
        "application/x-protobuf",
        Some("-bad-index"),
        protobuf_push("x", 1),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // JSON through curl, into an index named by the header.
    let json = format!(
        r#"{{"streams": [{{"stream": {{"job": "api", "env": "prod"}}, "values": [["{}000000000", "user login ok"], ["{}000000000", "user login failed", {{"user": "u42"}}]]}}]}}"#,
        START,
        START + 1
    );
    match curl_json(&node.endpoint, "loki-json", &json) {
        Some(code) => assert_eq!(code, "204"),
        None => assert!(
            std::env::var("CI").is_err(),
            "CI must push JSON through curl: curl is missing"
        ),
    }

    // Everything acknowledged is searchable: labels as fields, the line, metadata.
    let wait = node
        .request(
            Method::POST,
            "/api/v1/loki-logs/ingest?commit=force",
            "application/x-ndjson",
            "",
        )
        .await;
    assert_eq!(wait.0, 200, "{}", wait.1);
    assert_eq!(node.count("loki-logs", "*").await, 60);
    assert_eq!(node.count("loki-logs", "job:varlogs").await, 40);
    assert_eq!(
        node.count("loki-logs", "line:status=500 AND job:nginx")
            .await,
        5
    );
    assert_eq!(
        node.count("loki-logs", "structured_metadata.trace_id:trace-7")
            .await,
        2
    );
    assert_eq!(node.count("loki-logs", "label_line:label").await, 60);
    let hits = node
        .search(
            "loki-logs",
            serde_json::json!({"query": "job:varlogs", "max_hits": 1, "sort_by": "timestamp"}),
        )
        .await;
    let first = &hits["hits"][0];
    assert_eq!(first["host"], "web-1", "{first}");
    assert!(
        first["timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2026-01-01T00:00:00.123456789"),
        "{first}"
    );
    if Command::new("curl").arg("--version").output().is_ok() {
        node.request(
            Method::POST,
            "/api/v1/loki-json/ingest?commit=force",
            "application/x-ndjson",
            "",
        )
        .await;
        assert_eq!(node.count("loki-json", "line:failed AND env:prod").await, 1);
        assert_eq!(
            node.count("loki-json", "structured_metadata.user:u42")
                .await,
            1
        );
    }
}
