//! The web UI: its page is one compressed, cached response; its modules pass their unit
//! tests in Node.js; and a user's path through every page works in Debian's headless
//! Chromium (driven by Playwright, `tests/ui-browser/`) against a live node, with
//! authentication off and on. Screenshots land in `target/tmp/web_ui/<run>/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{cluster, TestNode};
use serde_json::{json, Value};

const INDEX: &str = "ui-logs";
const SCRATCH_INDEX: &str = "ui-scratch";
const TIMELESS_INDEX: &str = "ui-timeless";
const NUM_DOCS: u64 = 2_000;
const SEVERITIES: [&str; 4] = ["INFO", "INFO", "WARN", "ERROR"];
const SERVICES: [&str; 3] = ["api", "payments", "search"];
const ADMIN_ID: &str = "ui-admin";
const ADMIN_SECRET: &str = "a-secret-for-the-web-ui-tests-0123456789abcdef";

fn index_config(index_id: &str) -> String {
    format!(
        r#"
version: 0.9
index_id: {index_id}
doc_mapping:
  field_mappings:
    - {{name: timestamp, type: datetime, input_formats: [unix_timestamp], fast: true, fast_precision: milliseconds}}
    - {{name: severity_text, type: text, tokenizer: raw, fast: true}}
    - {{name: service_name, type: text, tokenizer: raw, fast: true}}
    - {{name: body, type: text, tokenizer: default, record: position}}
  timestamp_field: timestamp
  tag_fields: [severity_text]
search_settings:
  default_search_fields: [body]
"#
    )
}

/// 2,000 lines over the last 50 minutes, one in five a timeout, severities in a cycle of
/// four: the counts the browser must show follow from these rules.
fn documents(now_ms: u64) -> String {
    (0..NUM_DOCS)
        .map(|i| {
            let body = if i % 5 == 0 {
                format!("request {i} timeout after 30s")
            } else {
                format!("request {i} served in {} ms", i % 300)
            };
            json!({
                "timestamp": now_ms - 60_000 - i * 1_470,
                "severity_text": SEVERITIES[(i % 4) as usize],
                "service_name": SERVICES[(i % 3) as usize],
                "body": body,
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or_default()
}

/// The prerequisites of the browser test, or why they are missing.
fn browser_missing() -> Option<String> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("Debian's chromium is not installed (apt-get install chromium)".to_string());
    }
    if Command::new("python3").arg("--version").output().is_err() {
        return Some("python3 is not installed".to_string());
    }
    None
}

fn skip_unless_ci(what: &str, reason: &str) -> bool {
    assert!(std::env::var("CI").is_err(), "CI must run {what}: {reason}");
    eprintln!("SKIPPED: {what}: {reason}");
    true
}

fn output_dir(run: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("web_ui")
        .join(run);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A node's client, with a key when auth is on.
struct Client {
    endpoint: String,
    key: Option<String>,
    http: reqwest::Client,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: String,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.endpoint))
            .header("content-type", content_type)
            .body(body);
        if let Some(key) = &self.key {
            request = request.header("authorization", format!("ApiKey {key}"));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn load(&self) {
        // No timestamp field: no range, no histogram, every document.
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/api/v1/indexes",
                "application/yaml",
                format!(
                    "version: 0.9\nindex_id: {TIMELESS_INDEX}\ndoc_mapping:\n  mode: dynamic\n"
                ),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/{TIMELESS_INDEX}/ingest?commit=force"),
                "application/x-ndjson",
                "{\"msg\": \"first without time\", \"level\": \"info\"}\n{\"msg\": \"second without time\", \"level\": \"warn\"}\n{\"msg\": \"third\", \"level\": \"error\"}\n".to_string(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        for index in [INDEX, SCRATCH_INDEX] {
            let (status, body) = self
                .send(
                    reqwest::Method::POST,
                    "/api/v1/indexes",
                    "application/yaml",
                    index_config(index),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/{INDEX}/ingest?commit=force"),
                "application/x-ndjson",
                documents(now_ms()),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/{SCRATCH_INDEX}/ingest?commit=force"),
                "application/x-ndjson",
                documents(now_ms())
                    .lines()
                    .take(10)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Where the search API puts a syntax error of `query`, which the page must show.
    async fn syntax_error_position(&self, query: &str) -> usize {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/{INDEX}/search"),
                "application/json",
                json!({ "query": query }).to_string(),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        let message = body["error"].as_str().unwrap();
        let position = message
            .split("at position ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .and_then(|number| number.parse().ok());
        position.unwrap_or_else(|| panic!("no position in `{message}`"))
    }
}

/// Runs `bash script argument` with its output in files of `out` (a pipe nobody reads
/// while it runs could fill and stall it), killed if it outlives `limit`; the browser goes
/// with it, as Playwright ends Chromium when its driver's pipe closes.
fn run_bounded(
    script: &str,
    argument: &str,
    out: &Path,
    limit: Duration,
) -> (bool, String, String) {
    let stdout_path = out.join("browser.stdout");
    let stderr_path = out.join("browser.stderr");
    let mut child = Command::new("bash")
        .arg(script)
        .arg(argument)
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("run tests/ui-browser/run.sh");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let mut stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\nkilled after {limit:?}"));
    }
    (
        status.is_some_and(|status| status.success()),
        stdout,
        stderr,
    )
}

/// Runs the browser test with `spec`, failing the test if it fails; its standard output.
async fn run_script(spec: &Value, out: &Path) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui-browser/run.sh");
    let spec = spec.to_string();
    let out_dir = out.to_path_buf();
    let (success, stdout, stderr) = tokio::task::spawn_blocking(move || {
        run_bounded(script, &spec, &out_dir, Duration::from_secs(600))
    })
    .await
    .unwrap();
    assert!(
        success,
        "the browser test failed (screenshots in {}):\n{stdout}\n{stderr}",
        out.display()
    );
    stdout
}

async fn run_browser(client: &Client, node_id: &str, out: &Path, full: bool) -> Value {
    let bad_query = "body:(timeout AND";
    let live_body = format!("live line {}", now_ms());
    let spec = json!({
        "endpoint": client.endpoint,
        "api_key": client.key,
        "out": out,
        "node_id": node_id,
        "index": INDEX,
        "scratch_index": SCRATCH_INDEX,
        "timeless_index": TIMELESS_INDEX,
        "total": NUM_DOCS,
        "severities": ["INFO", "WARN", "ERROR"],
        "query": "body:timeout",
        "highlighted": "timeout",
        "query_hits": NUM_DOCS / 5,
        "severity_field": "severity_text",
        "severity_value": "ERROR",
        "query_and_value_hits": NUM_DOCS / 20,
        "bad_query": bad_query,
        "bad_query_position": client.syntax_error_position(bad_query).await,
        "live_document": {
            "timestamp": now_ms(),
            "severity_text": "WARN",
            "service_name": "live",
            "body": live_body,
        },
        "full": full,
    });
    let stdout = run_script(&spec, out).await;
    let measurements: Value =
        serde_json::from_str(stdout.trim().lines().last().unwrap_or("")).unwrap();
    eprintln!(
        "web UI measurements: {measurements} (screenshots in {})",
        out.display()
    );
    measurements
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_searches_browses_indexes_and_the_cluster_in_chromium() {
    if let Some(reason) = browser_missing() {
        skip_unless_ci("the browser test", &reason);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let client = Client {
        endpoint: node.endpoint.clone(),
        key: None,
        http: reqwest::Client::new(),
    };
    client.load().await;
    let measurements = run_browser(&client, "test-node", &output_dir("open"), true).await;
    assert!(measurements["first_search_render_ms"].as_f64().unwrap() > 0.0);
    assert!(measurements["bucket_hits"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_on_the_ui_asks_for_a_key_and_searches_with_it() {
    if let Some(reason) = browser_missing() {
        skip_unless_ci("the browser test", &reason);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start_secured_with_admin(
        &dir.path().join("node"),
        "ui-secured",
        ADMIN_ID,
        ADMIN_SECRET,
        "",
    )
    .await;
    let key = quarry_common::api_keys::encode_credential(ADMIN_ID, ADMIN_SECRET);
    let client = Client {
        endpoint: node.endpoint.clone(),
        key: Some(key),
        http: reqwest::Client::new(),
    };
    // The page itself is open; what it shows needs the key.
    let anonymous = Client {
        endpoint: node.endpoint.clone(),
        key: None,
        http: reqwest::Client::new(),
    };
    assert_eq!(
        anonymous
            .send(reqwest::Method::GET, "/ui/", "text/html", String::new())
            .await
            .0,
        200
    );
    assert_eq!(
        anonymous
            .send(
                reqwest::Method::GET,
                "/api/v1/indexes",
                "application/json",
                String::new()
            )
            .await
            .0,
        401
    );
    client.load().await;
    run_browser(&client, "ui-secured", &output_dir("secured"), false).await;
}

/// The UI on a cluster: the cluster page of the surviving node shows the one killed with
/// `kill -9` as dead, and its search finds the documents the dead node indexed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_the_ui_shows_a_dead_node_and_searches_what_it_indexed() {
    if let Some(reason) = browser_missing() {
        skip_unless_ci("the browser test", &reason);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut first = cluster::configure(
        dir.path(),
        "node-1",
        "metastore, control_plane, indexer, searcher, janitor",
        None,
    );
    first.node.start_again().await;
    let mut second = cluster::configure(
        dir.path(),
        "node-2",
        "indexer, searcher",
        Some(first.gossip_port),
    );
    second.node.start_again().await;
    for member in [&first, &second] {
        cluster::wait_for_members(&member.node, &["node-1", "node-2"], Duration::from_secs(60))
            .await;
    }
    first.node.create_index(&index_config(INDEX)).await;
    second
        .node
        .ingest(INDEX, documents(now_ms()), "force")
        .await;
    second.node.kill9();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, cluster) = first.node.get("/api/v1/cluster").await;
        let dead = cluster["dead_nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if dead.iter().any(|node| node["node_id"] == "node-2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node-2 never died for node-1: {cluster}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = output_dir("cluster");
    let spec = json!({
        "mode": "cluster",
        "endpoint": first.node.endpoint,
        "out": out,
        "index": INDEX,
        "total": NUM_DOCS,
        "live_node": "node-1",
        "dead_node": "node-2",
    });
    run_script(&spec, &out).await;
}

#[tokio::test]
async fn the_page_is_one_gzipped_response_revalidated_by_etag() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let root = http
        .get(format!("{}/", node.endpoint))
        .send()
        .await
        .unwrap();
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()["location"], "/ui/");

    let page = http
        .get(format!("{}/ui/", node.endpoint))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(headers["cache-control"], "no-cache");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains("script-src 'sha256-") && policy.contains("connect-src 'self'"),
        "{policy}"
    );
    let etag = headers["etag"].to_str().unwrap().to_string();
    let gzipped = page.bytes().await.unwrap();
    let mut html = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gzipped[..]), &mut html)
        .unwrap();
    // Everything the page runs is in this one response.
    assert!(html.contains("<style>") && html.contains("<script type=\"module\">"));
    assert!(
        !html.contains(" src=") && !html.contains("rel=\"stylesheet\""),
        "the page must not fetch more"
    );
    assert!(html.contains("__quarry_pages_search"));
    eprintln!("UI page: {} bytes, {} gzipped", html.len(), gzipped.len());
    assert!(gzipped.len() < 40_000, "{} bytes gzipped", gzipped.len());

    let again = http
        .get(format!("{}/ui/indexes/demo-logs", node.endpoint))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let plain = http
        .get(format!("{}/ui", node.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.text().await.unwrap(), html);
}

#[test]
fn the_ui_modules_pass_their_unit_tests_in_node() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let output = match Command::new("node")
        .arg("--test")
        .arg("tests/")
        .current_dir(&ui)
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            skip_unless_ci(
                "the UI unit tests",
                &format!("node is not installed ({error})"),
            );
            return;
        }
    };
    assert!(
        output.status.success(),
        "node --test ui/tests failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
