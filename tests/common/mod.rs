//! Helpers for end-to-end tests: a real `quarry` process on an ephemeral 127.0.0.1 port,
//! spoken to over HTTP.
#![allow(dead_code)]

pub mod cluster;
pub mod tls;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct TestNode {
    pub endpoint: String,
    pub data_dir: PathBuf,
    child: Option<Child>,
    config_path: PathBuf,
    env: Vec<(String, String)>,
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// A UDP port free now, for a node's gossip.
pub fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral UDP port");
    socket.local_addr().expect("local addr").port()
}

impl TestNode {
    /// Starts a node with its data under `data_dir`.
    pub async fn start(data_dir: &Path) -> TestNode {
        TestNode::start_with_env(data_dir, &[]).await
    }

    pub async fn start_with_env(data_dir: &Path, env: &[(&str, &str)]) -> TestNode {
        TestNode::start_with(data_dir, env, "").await
    }

    /// Starts a node whose config gets `extra_config` (YAML) appended.
    pub async fn start_with(data_dir: &Path, env: &[(&str, &str)], extra_config: &str) -> TestNode {
        let mut node = TestNode::configure(
            data_dir,
            env,
            &format!("node_id: test-node\n{extra_config}"),
        );
        node.spawn().await;
        node
    }

    /// A ready node with authentication on, whose admin key `admin_id:admin_secret` is
    /// bootstrapped (`QUARRY_BOOTSTRAP_API_KEY`); `more_auth` adds indented lines to its
    /// `auth:` section.
    pub async fn start_secured_with_admin(
        data_dir: &Path,
        node_id: &str,
        admin_id: &str,
        admin_secret: &str,
        more_auth: &str,
    ) -> TestNode {
        let bootstrap = format!("{admin_id}:{admin_secret}");
        let mut node = TestNode::configure(
            data_dir,
            &[("QUARRY_BOOTSTRAP_API_KEY", bootstrap.as_str())],
            &format!("node_id: {node_id}\nauth:\n  enabled: true\n{more_auth}"),
        );
        node.start_again().await;
        node
    }

    /// A node with `config` (YAML; it sets `node_id`), an ephemeral REST port and its data
    /// under `data_dir`, not started yet: `start_again` starts it and waits until it is
    /// ready, `spawn_unchecked` only starts the process.
    pub fn configure(data_dir: &Path, env: &[(&str, &str)], config: &str) -> TestNode {
        // Absolute, since the node runs in it.
        let data_dir = &std::path::absolute(data_dir).unwrap();
        let port = free_port();
        let config_path = data_dir.join("node.yaml");
        std::fs::create_dir_all(data_dir).unwrap();
        std::fs::write(
            &config_path,
            format!(
                "rest:\n  listen_port: {port}\ndata_dir: {}\n{config}",
                data_dir.join("qdata").display()
            ),
        )
        .unwrap();
        TestNode {
            endpoint: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
            child: None,
            config_path,
            env: env
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        }
    }

    /// Makes the node serve HTTPS: `tls_yaml` is the `rest.tls` section (indented under
    /// `rest:`), and the endpoint becomes `https://`. Readiness must then be awaited with a
    /// client that trusts the CA (`tls::wait_ready_https`).
    pub fn serve_tls(&mut self, tls_yaml: &str) {
        let config = std::fs::read_to_string(&self.config_path).unwrap();
        let port = self.endpoint.rsplit(':').next().unwrap().to_string();
        let rest = format!("rest:\n  listen_port: {port}\n");
        assert!(config.contains(&rest), "{config}");
        let config = config.replacen(&rest, &format!("{rest}{tls_yaml}"), 1);
        std::fs::write(&self.config_path, config).unwrap();
        self.endpoint = self.endpoint.replacen("http://", "https://", 1);
    }

    /// Starts the process without waiting for it.
    pub fn spawn_unchecked(&mut self) {
        self.spawn_process();
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut()?.try_wait().ok().flatten() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Sends a signal by name (`STOP`, `CONT`) to the process.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([format!("-{signal}"), pid.to_string()])
                .status();
        }
    }

    async fn spawn(&mut self) {
        self.spawn_process();
        self.wait_ready().await;
    }

    fn spawn_process(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.join("node.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_quarry"))
            .args(["run", "--config"])
            .arg(&self.config_path)
            // Relative paths a request names (schemathesis sends an `index_uri` such as
            // `>x`) resolve in the node's own folder, not in the repository.
            .current_dir(&self.data_dir)
            .env("RUST_LOG", "info")
            .envs(
                self.env
                    .iter()
                    .map(|(key, value)| (key.as_str(), value.as_str())),
            )
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start quarry");
        self.child = Some(child);
    }

    /// Starts the process and waits for it to answer, ready or not (a failed shard makes
    /// readiness fail on purpose).
    pub async fn start_again_unready(&mut self) {
        assert!(self.child.is_none(), "the node is still running");
        self.spawn_process();
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = reqwest::Client::new();
        while client
            .get(format!("{}/health/livez", self.endpoint))
            .send()
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "node not live in time; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = reqwest::Client::new();
        loop {
            if let Ok(response) = client
                .get(format!("{}/health/readyz", self.endpoint))
                .send()
                .await
            {
                if response.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                panic!("quarry exited early with {status}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "node not ready in time; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("node.log")).unwrap_or_default()
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(
                        status.success(),
                        "quarry exited with {status} on SIGTERM; log:\n{}",
                        self.log()
                    );
                    return;
                }
                assert!(Instant::now() < deadline, "quarry did not stop on SIGTERM");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// SIGKILL: no chance to flush or publish anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "the node is still running");
        self.spawn().await;
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Resident memory of the node process, from /proc.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    pub fn log_len(&self) -> usize {
        self.log().len()
    }

    /// Waits until `needle` appears in the log after byte `from`.
    pub async fn wait_for_log(&self, from: usize, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let log = self.log();
            if log.get(from..).is_some_and(|tail| tail.contains(needle)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let (status, text) = self.request_text(method, path, content_type, body).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The response's body as the bytes sent, for checks that parsing would hide.
    pub async fn request_text(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, String) {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", self.endpoint))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// Creates an index from a YAML config, which must succeed.
    pub async fn create_index(&self, config: &str) {
        let (status, body) = self
            .request(
                reqwest::Method::POST,
                "/api/v1/indexes",
                "application/yaml",
                config.to_string(),
            )
            .await;
        assert_eq!(status, 200, "creating the index failed: {body}");
    }

    /// Ingests NDJSON with the given commit mode, which must succeed.
    pub async fn ingest(
        &self,
        index: &str,
        ndjson: impl Into<reqwest::Body>,
        commit: &str,
    ) -> Value {
        let path = format!("/api/v1/{index}/ingest?commit={commit}");
        let (status, body) = self
            .request(reqwest::Method::POST, &path, "application/x-ndjson", ndjson)
            .await;
        assert_eq!(status, 200, "ingest failed: {body}");
        body
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(
            reqwest::Method::POST,
            path,
            "application/json",
            body.to_string(),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, "application/json", "")
            .await
    }

    pub async fn search(&self, index: &str, request: Value) -> Value {
        let (status, body) = self
            .request(
                reqwest::Method::POST,
                &format!("/api/v1/{index}/search"),
                "application/json",
                request.to_string(),
            )
            .await;
        assert_eq!(status, 200, "search {request} failed: {body}");
        body
    }

    /// Every hit of an ES `_search`, walked page by page with each last hit's `sort` as
    /// `search_after`. `restate_cursor` may rewrite a page's cursor, as some clients do.
    pub async fn es_hits_after(
        &self,
        index: &str,
        request: Value,
        restate_cursor: impl Fn(usize, &mut Value),
    ) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after: Option<Value> = None;
        for page in 0..1_000 {
            let mut request = request.clone();
            if let Some(after) = &after {
                request["search_after"] = after.clone();
            }
            let (status, answer) = self
                .post_json(&format!("/api/v1/_elastic/{index}/_search"), &request)
                .await;
            assert_eq!(status, 200, "{answer}");
            let hits = answer["hits"]["hits"].as_array().expect("hits").clone();
            let Some(last) = hits.last() else {
                return all;
            };
            let mut cursor = last["sort"].clone();
            restate_cursor(page, &mut cursor);
            after = Some(cursor);
            all.extend(hits);
        }
        panic!("search_after did not end after 1000 pages");
    }

    /// Sends an ES `_bulk` body with `refresh=true`; the distinct item results (`created`,
    /// `noop`, …, `error` for an item without one).
    pub async fn bulk_results(&self, ndjson: &str) -> std::collections::BTreeSet<String> {
        let (status, answer) = self
            .request(
                reqwest::Method::POST,
                "/api/v1/_elastic/_bulk?refresh=true",
                "application/x-ndjson",
                ndjson.to_string(),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        bulk_item_results(&answer).into_iter().collect()
    }

    pub async fn count(&self, index: &str, query: &str) -> u64 {
        let response = self
            .search(index, serde_json::json!({"query": query, "max_hits": 0}))
            .await;
        response["num_hits"].as_u64().expect("num_hits")
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The number of tantivy segments in each split file of an index on local storage, read
/// from the splits' file tables.
#[allow(dead_code)]
pub fn segments_per_split(data_dir: &Path, index_id: &str) -> Vec<usize> {
    let index_dir = data_dir.join("qdata").join("indexes").join(index_id);
    let mut counts = Vec::new();
    for entry in std::fs::read_dir(&index_dir).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "split") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let footer = &bytes[bytes.len() - quarry_common::split::FOOTER_LEN..];
        let table_offset = u64::from_le_bytes(footer[0..8].try_into().unwrap());
        let table_len = u64::from_le_bytes(footer[8..16].try_into().unwrap());
        let table = &bytes[table_offset as usize..(table_offset + table_len) as usize];
        let files = quarry_common::split::FileTable::decode(table, table_offset).unwrap();
        let segments: std::collections::HashSet<String> = files
            .files()
            .filter(|(name, _)| name.extension().is_some_and(|ext| ext == "idx"))
            .map(|(name, _)| name.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        counts.push(segments.len());
    }
    counts
}

/// Each `_bulk` item's `result` (`created`, `noop`, …), `error` for a failed one.
pub fn bulk_item_results(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            item["index"]["result"]
                .as_str()
                .unwrap_or("error")
                .to_string()
        })
        .collect()
}
