//! Real log shippers against a real node. rsyslog (Debian's `rsyslog` and
//! `rsyslog-elasticsearch`) runs in the foreground with its own config: `imfile` reads a
//! file that grows while the test writes it, and `omelasticsearch` ships it to `_bulk` in
//! its own dialect (`_type`, `create` actions, a health check on `_cat/health`) into an
//! index created on first use from a template. The node is killed with `kill -9` mid-stream
//! and started again: rsyslog's queue retries, and every line arrives exactly once.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestNode;

const LINES: usize = 4_000;

/// The rsyslog process, killed with the test whatever happens.
struct Rsyslog(Child);

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn omelasticsearch_installed() -> bool {
    let found = Command::new("rsyslogd").arg("-v").output().is_ok()
        && [
            "/usr/lib/x86_64-linux-gnu/rsyslog",
            "/usr/lib/aarch64-linux-gnu/rsyslog",
            "/usr/lib/rsyslog",
        ]
        .iter()
        .any(|dir| Path::new(dir).join("omelasticsearch.so").exists());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run rsyslog: install the Debian packages rsyslog and rsyslog-elasticsearch"
        );
        eprintln!("SKIPPED: rsyslog with omelasticsearch is not installed");
    }
    found
}

fn rsyslog_config(dir: &Path, endpoint: &str, log_file: &Path) -> String {
    format!(
        r#"global(workDirectory="{work}")
module(load="imfile")
module(load="omelasticsearch")
input(type="imfile" file="{log}" tag="app:" addMetadata="on" freshStartTail="off" ruleset="ship")
template(name="doc" type="list") {{
  constant(value="{{\"@timestamp\":\"")
  property(name="timegenerated" dateFormat="rfc3339")
  constant(value="\",\"message\":\"")
  property(name="msg" format="json")
  constant(value="\",\"offset\":")
  property(name="$!metadata!fileoffset")
  constant(value="}}")
}}
# The line's place in the file: the same id when rsyslog sends a batch again.
template(name="docid" type="string" string="app-%$!metadata!fileoffset%")
ruleset(name="ship") {{
  action(type="omelasticsearch" server="{endpoint}/api/v1/_elastic" searchIndex="logs-rsyslog"
         template="doc" bulkmode="on" maxbytes="64k" bulkid="docid" dynbulkid="on"
         writeoperation="create" errorfile="{errors}"
         action.resumeRetryCount="-1" action.resumeInterval="1"
         queue.type="LinkedList" queue.size="100000")
}}
"#,
        work = dir.join("work").display(),
        log = log_file.display(),
        errors = dir.join("errors.json").display(),
    )
}

async fn count_lines(node: &TestNode) -> Option<u64> {
    let (status, answer) = node
        .post_json(
            "/api/v1/logs-rsyslog/search",
            &serde_json::json!({"query": "message:login", "max_hits": 0}),
        )
        .await;
    (status == 200)
        .then(|| answer["num_hits"].as_u64())
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_ships_every_line_once_across_a_node_crash() {
    if !omelasticsearch_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::configure(
        &dir.path().join("node"),
        &[],
        "node_id: shippers\nindex_templates:\n  - template_id: shipped\n    index_id_patterns: [logs-*]\n    indexing_settings:\n      commit_timeout_secs: 1\n",
    );
    node.start_again().await;
    std::fs::create_dir_all(dir.path().join("work")).unwrap();
    let log_file = dir.path().join("app.log");
    std::fs::write(&log_file, "").unwrap();
    let config = dir.path().join("rsyslog.conf");
    std::fs::write(
        &config,
        rsyslog_config(dir.path(), &node.endpoint, &log_file),
    )
    .unwrap();
    let _rsyslog = Rsyslog(
        Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&config)
            .arg("-i")
            .arg(dir.path().join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd"),
    );

    // The application writes its log for ~4 s; the node dies in the middle of it.
    let writer_file = log_file.clone();
    let writer = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(writer_file)
            .unwrap();
        for line in 0..LINES {
            writeln!(file, "line {line}: user login failed for id {line}").unwrap();
            if line % 100 == 99 {
                file.flush().unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_lines(&node).await.unwrap_or(0) < 500 {
        assert!(
            Instant::now() < deadline,
            "rsyslog shipped nothing; log:\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.kill9();
    tokio::time::sleep(Duration::from_secs(2)).await;
    node.start_again().await;
    writer.await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    let mut shipped = 0;
    while Instant::now() < deadline {
        shipped = count_lines(&node).await.unwrap_or(0);
        if shipped >= LINES as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A retried batch the node had taken before dying would show up as extra documents.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let shipped_then = count_lines(&node).await.unwrap_or(0);
    assert_eq!(
        (shipped, shipped_then),
        (LINES as u64, LINES as u64),
        "every line once; rsyslog errors: {}",
        std::fs::read_to_string(dir.path().join("errors.json")).unwrap_or_default()
    );
    let (_, answer) = node
        .post_json(
            "/api/v1/logs-rsyslog/search",
            &serde_json::json!({"query": "offset:0", "max_hits": 5}),
        )
        .await;
    assert_eq!(answer["num_hits"], 1, "{answer}");
    assert!(answer["hits"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("line 0: user login failed"));
}
