//! API keys and roles against real nodes: every route's access rule (walked from the
//! router's own table), two tenants with overlapping index names on every path that names
//! or lists indexes, and a key revoked through one node refused by another within seconds.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cluster::{configure_with, ClusterNode};
use common::tls::{https_client, test_certificates, tls_yaml, wait_ready_https};
use common::TestNode;
use reqwest::Method;
use serde_json::{json, Value};

const ADMIN_ID: &str = "admin";
const ADMIN_SECRET: &str = "an-admin-secret-of-at-least-32-characters";

fn admin_key() -> String {
    encode(ADMIN_ID, ADMIN_SECRET)
}

fn encode(id: &str, secret: &str) -> String {
    quarry_common::api_keys::encode_credential(id, secret)
}

/// Sends requests as one API key (or none).
struct Caller {
    endpoint: String,
    authorization: Option<String>,
}

impl Caller {
    fn new(node: &TestNode, encoded: Option<&str>) -> Caller {
        Caller {
            endpoint: node.endpoint.clone(),
            authorization: encoded.map(|encoded| format!("ApiKey {encoded}")),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<String>) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.endpoint))
            .timeout(Duration::from_secs(30));
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(body) = body {
            let content_type = if body.trim_start().starts_with("index_id") {
                "application/yaml"
            } else if body.contains('\n') {
                "application/x-ndjson"
            } else {
                "application/json"
            };
            request = request.header("content-type", content_type).body(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The status and the `Retry-After` seconds of a request.
    async fn status_and_retry_after(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> (u16, Option<u64>) {
        let mut request =
            reqwest::Client::new().request(method, format!("{}{path}", self.endpoint));
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("request");
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        (response.status().as_u16(), retry_after)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(Method::POST, path, Some(body.to_string())).await
    }

    /// The statuses of `count` identical POSTs sent at once.
    async fn concurrent_statuses(&self, count: usize, path: &str, body: &str) -> Vec<u16> {
        let requests = (0..count).map(|_| self.send(Method::POST, path, Some(body.to_string())));
        futures::future::join_all(requests)
            .await
            .into_iter()
            .map(|(status, _)| status)
            .collect()
    }

    /// Creates a key with one role and returns its `encoded` credential.
    async fn create_key(&self, name: &str, role: Value) -> String {
        let (status, key) = self
            .post(
                "/api/v1/_elastic/_security/api_key",
                json!({"name": name, "role_descriptors": {name: role}}),
            )
            .await;
        assert_eq!(status, 200, "{key}");
        let encoded = key["encoded"].as_str().unwrap().to_string();
        let expected = encode(
            key["id"].as_str().unwrap(),
            key["api_key"].as_str().unwrap(),
        );
        assert_eq!(encoded, expected);
        encoded
    }
}

fn index_config(index_id: &str) -> String {
    format!(
        "index_id: {index_id}\ndoc_mapping:\n  field_mappings:\n    - {{name: ts, type: datetime, fast: true}}\n    - {{name: body, type: text}}\n  timestamp_field: ts\nsearch_settings:\n  default_search_fields: [body]\n"
    )
}

async fn start_secured(dir: &std::path::Path) -> TestNode {
    let bootstrap = format!("{ADMIN_ID}:{ADMIN_SECRET}");
    TestNode::start_with_env(dir, &[("QUARRY_BOOTSTRAP_API_KEY", bootstrap.as_str())]).await
}

/// Three indexes whose names overlap (`team-a-logs`, `team-ab-logs`, `team-b-logs`), each
/// with its name in every document's body.
async fn create_tenants(admin: &Caller) {
    for (index, docs) in [("team-a-logs", 3), ("team-ab-logs", 4), ("team-b-logs", 5)] {
        let (status, body) = admin
            .send(Method::POST, "/api/v1/indexes", Some(index_config(index)))
            .await;
        assert_eq!(status, 200, "{body}");
        let ndjson: String = (0..docs)
            .map(|n| {
                json!({"ts": 1_767_225_600 + n, "body": format!("event {n} of {index}")})
                    .to_string()
                    + "\n"
            })
            .collect();
        let (status, body) = admin
            .send(
                Method::POST,
                &format!("/api/v1/{index}/ingest?commit=force"),
                Some(ndjson),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

fn index_names(hits: &Value) -> BTreeSet<String> {
    hits["hits"]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|hit| hit["_index"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn every_route_enforces_its_access_rule() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_secured(dir.path()).await;
    let admin = Caller::new(&node, Some(&admin_key()));
    let anonymous = Caller::new(&node, None);
    create_tenants(&admin).await;
    // A key that may do nothing at all, and keys with one privilege each.
    let nothing = admin
        .create_key("nothing", json!({"cluster": [], "indices": []}))
        .await;
    let mut keys_by_privilege = std::collections::HashMap::new();
    for (rule, role) in [
        ("cluster:monitor", json!({"cluster": ["monitor"]})),
        (
            "cluster:manage_security",
            json!({"cluster": ["manage_security"]}),
        ),
        (
            "index:read",
            json!({"indices": [{"names": ["team-a-*"], "privileges": ["read"]}]}),
        ),
        (
            "index:view_metadata",
            json!({"indices": [{"names": ["team-a-*"], "privileges": ["view_index_metadata"]}]}),
        ),
        (
            "index:write",
            json!({"indices": [{"names": ["team-a-*"], "privileges": ["write"]}]}),
        ),
        (
            "index:manage",
            json!({"indices": [{"names": ["team-a-*"], "privileges": ["manage"]}]}),
        ),
    ] {
        let name = rule.replace(':', "-");
        keys_by_privilege.insert(rule.to_string(), admin.create_key(&name, role).await);
    }
    let without = Caller::new(&node, Some(&nothing));
    let rules = quarry::access_rules();
    assert!(rules.len() > 40, "{} rules", rules.len());
    for (method, path, rule) in rules {
        let concrete = path
            .replace("{index_id}", "team-a-logs")
            .replace("{expression}", "team-a-logs")
            .replace("{key_id}", "no-such-key")
            .replace("{scroll_id}", "no-such-scroll")
            .replace("{doc_id}", "no-such-doc");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let what = format!("{method} {path} ({rule})");
        let (status, body) = anonymous.send(method.clone(), &concrete, None).await;
        if rule == "open" {
            assert_ne!(status, 401, "{what}: {body}");
            continue;
        }
        assert_eq!(status, 401, "{what} without a key: {body}");
        let (status, body) = without.send(method.clone(), &concrete, None).await;
        if rule == "authenticated" || rule.starts_with("handler:") {
            // Handlers narrow what a key sees themselves: the tenant test checks them.
            assert!(status != 401 && status < 500, "{what}: {status} {body}");
            continue;
        }
        assert_eq!(
            status, 403,
            "{what} with a key without the privilege: {body}"
        );
        let allowed = Caller::new(&node, Some(&keys_by_privilege[&rule]));
        // DELETE of an index would remove the test's data: its refusal is what matters.
        if method == Method::DELETE && path.starts_with("/api/v1/indexes/") {
            continue;
        }
        let (status, body) = allowed.send(method, &concrete, None).await;
        assert!(
            status != 401 && status != 403,
            "{what} with the privilege: {status} {body}"
        );
    }
}

#[tokio::test]
async fn tenants_see_only_their_indexes_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_secured(dir.path()).await;
    let admin = Caller::new(&node, Some(&admin_key()));
    let anonymous = Caller::new(&node, None);

    // Without a key: 401 with a challenge, in ES's shape on the ES API.
    let (status, body) = anonymous.get("/api/v1/indexes").await;
    assert_eq!(status, 401);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("missing credentials"));
    let (status, body) = anonymous.get("/api/v1/_elastic/_cat/indices").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "security_exception", "{body}");
    let response = reqwest::get(format!("{}/api/v1/indexes", node.endpoint))
        .await
        .unwrap();
    assert!(response.headers().contains_key("www-authenticate"));
    let (status, _) = anonymous.get("/health/livez").await;
    assert_eq!(status, 200);
    let wrong = Caller::new(&node, Some(&encode(ADMIN_ID, "not-the-secret")));
    assert_eq!(wrong.get("/api/v1/indexes").await.0, 401);
    // Without a cluster secret, node-to-node routes are no way around the keys.
    let (status, body) = anonymous
        .post("/internal/v1/metastore", json!({"method": "list_api_keys"}))
        .await;
    assert_eq!(status, 403, "{body}");

    create_tenants(&admin).await;
    let team_a = admin
        .create_key(
            "team-a",
            json!({"indices": [{"names": ["team-a-*"], "privileges": ["read"]}]}),
        )
        .await;
    let team_a_writer = admin
        .create_key(
            "team-a-writer",
            json!({"indices": [{"names": ["team-a-*"], "privileges": ["write"]}]}),
        )
        .await;
    let team_b = admin
        .create_key(
            "team-b",
            json!({"indices": [{"names": ["team-b-*"], "privileges": ["read"]}]}),
        )
        .await;
    let a = Caller::new(&node, Some(&team_a));
    let b = Caller::new(&node, Some(&team_b));

    // Native search: its own index, never another's, by name, list or pattern.
    let (status, body) = a
        .post("/api/v1/team-a-logs/search", json!({"query": "*"}))
        .await;
    assert_eq!(
        (status, body["num_hits"].clone()),
        (200, json!(3)),
        "{body}"
    );
    for forbidden in [
        "team-b-logs",
        "team-ab-logs",
        "team-a-logs,team-b-logs",
        "team-b-missing",
    ] {
        let (status, body) = a
            .post(
                &format!("/api/v1/{forbidden}/search"),
                json!({"query": "*"}),
            )
            .await;
        assert_eq!(status, 403, "{forbidden}: {body}");
        assert!(!body.to_string().contains("team-b-logs") || forbidden.contains("team-b-logs"));
    }
    let (status, body) = a
        .post(
            "/api/v1/team-*/search",
            json!({"query": "*", "max_hits": 0}),
        )
        .await;
    assert_eq!(
        (status, body["num_hits"].clone()),
        (200, json!(3)),
        "{body}"
    );

    // ES search, count and msearch.
    let (status, body) = a
        .post("/api/v1/_elastic/*/_search", json!({"size": 100}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        index_names(&body),
        BTreeSet::from(["team-a-logs".to_string()])
    );
    let (status, body) = a.post("/api/v1/_elastic/team-*/_count", json!({})).await;
    assert_eq!((status, body["count"].clone()), (200, json!(3)), "{body}");
    let msearch = "{\"index\": \"team-a-logs\"}\n{}\n{\"index\": \"team-b-logs\"}\n{}\n{\"index\": \"team-*\"}\n{\"size\": 100}\n";
    let (status, body) = a
        .send(
            Method::POST,
            "/api/v1/_elastic/_msearch",
            Some(msearch.to_string()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let responses = body["responses"].as_array().unwrap();
    assert_eq!(responses[0]["status"], 200);
    assert_eq!(responses[1]["status"], 403, "{body}");
    assert_eq!(
        index_names(&responses[2]),
        BTreeSet::from(["team-a-logs".to_string()])
    );

    // Index metadata: listing, describe, splits, mapping, field caps, resolve, cat.
    let (_, listed) = a.get("/api/v1/indexes").await;
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|index| index["index_config"]["index_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["team-a-logs"]);
    for path in [
        "/api/v1/indexes/team-b-logs",
        "/api/v1/indexes/team-b-logs/splits",
        "/api/v1/team-b-logs/delete-tasks",
        "/api/v1/_elastic/team-b-logs",
        "/api/v1/_elastic/team-b-logs/_mapping",
        "/api/v1/_elastic/team-b-logs/_field_caps",
        "/api/v1/_elastic/_resolve/index/team-b-logs",
    ] {
        assert_eq!(a.get(path).await.0, 403, "{path}");
    }
    let (_, caps) = a.get("/api/v1/_elastic/team-*/_field_caps?fields=*").await;
    assert_eq!(caps["indices"], json!(["team-a-logs"]), "{caps}");
    let (_, resolved) = a.get("/api/v1/_elastic/_resolve/index/*").await;
    assert_eq!(
        resolved["indices"].as_array().unwrap().len(),
        1,
        "{resolved}"
    );
    let (_, cat) = a.get("/api/v1/_elastic/_cat/indices?format=json").await;
    let cat = cat.to_string();
    assert!(
        cat.contains("team-a-logs") && !cat.contains("team-b") && !cat.contains("team-ab"),
        "{cat}"
    );

    // Writes need write; reads need read; the cluster's state and metrics need monitor.
    let ndjson = "{\"ts\": 1767225700, \"body\": \"late\"}\n".to_string();
    let (status, _) = a
        .send(
            Method::POST,
            "/api/v1/team-a-logs/ingest",
            Some(ndjson.clone()),
        )
        .await;
    assert_eq!(status, 403);
    let writer = Caller::new(&node, Some(&team_a_writer));
    let (status, body) = writer
        .send(Method::POST, "/api/v1/team-a-logs/ingest", Some(ndjson))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        writer.post("/api/v1/team-a-logs/search", json!({})).await.0,
        403
    );
    let bulk = "{\"index\": {\"_index\": \"team-a-logs\"}}\n{\"ts\": 1767225701, \"body\": \"bulk\"}\n{\"index\": {\"_index\": \"team-b-logs\"}}\n{\"ts\": 1767225701, \"body\": \"intruder\"}\n";
    let (status, body) = writer
        .send(
            Method::POST,
            "/api/v1/_elastic/_bulk",
            Some(bulk.to_string()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["index"]["status"], 201, "{body}");
    assert_eq!(body["items"][1]["index"]["status"], 403, "{body}");
    assert_eq!(a.get("/metrics").await.0, 403);
    assert_eq!(a.get("/api/v1/cluster").await.0, 403);
    assert_eq!(
        a.send(
            Method::POST,
            "/api/v1/indexes",
            Some(index_config("team-a-new"))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        a.post("/api/v1/api-keys", json!({"name": "escalate"}))
            .await
            .0,
        403
    );

    // A scroll belongs to the key that opened it.
    let (status, page) = a
        .post(
            "/api/v1/_elastic/team-a-logs/_search?scroll=1m",
            json!({"size": 1}),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let scroll_id = page["_scroll_id"].as_str().unwrap().to_string();
    let (status, _) = b
        .post(
            "/api/v1/_elastic/_search/scroll",
            json!({"scroll_id": scroll_id}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = a
        .post(
            "/api/v1/_elastic/_search/scroll",
            json!({"scroll_id": scroll_id}),
        )
        .await;
    assert_eq!(
        (status, body["hits"]["hits"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{body}"
    );

    // Basic auth carries the same key; _authenticate says whose it is.
    let basic = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/_elastic/_security/_authenticate",
            node.endpoint
        ))
        .basic_auth(ADMIN_ID, Some(ADMIN_SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 200);

    // Invalidation takes effect at once on this node.
    let (_, listed) = admin.get("/api/v1/api-keys").await;
    let team_b_id = listed["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["name"] == "team-b")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(listed.to_string().find("key_hash").is_none(), "{listed}");
    let (status, body) = admin
        .send(
            Method::DELETE,
            &format!("/api/v1/api-keys/{team_b_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["invalidated_api_keys"], json!([team_b_id]));
    let (status, body) = b.post("/api/v1/team-b-logs/search", json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].as_str().unwrap().contains("invalidated"));
}

/// A key created through one node works on another at once, and once revoked through one
/// node, the other refuses it within the stated 2 s (plus a margin for a loaded machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_through_one_node_is_refused_by_the_others_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir
        .path()
        .join("shared")
        .join("indexes")
        .display()
        .to_string();
    let auth = format!("auth:\n  bootstrap_api_key: {ADMIN_ID}:{ADMIN_SECRET}\n");
    let mut first: ClusterNode = configure_with(
        dir.path(),
        "node-1",
        "metastore, control_plane, indexer, searcher",
        None,
        &shared,
        &shared,
        &auth,
    );
    first.node.start_again().await;
    let mut second = configure_with(
        dir.path(),
        "node-2",
        "indexer, searcher",
        Some(first.gossip_port),
        &shared,
        &shared,
        &auth,
    );
    second.node.start_again().await;
    let admin_first = Caller::new(&first.node, Some(&admin_key()));
    let (status, body) = admin_first
        .send(
            Method::POST,
            "/api/v1/indexes",
            Some(index_config("team-a-logs")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, key) = admin_first
        .post(
            "/api/v1/api-keys",
            json!({"name": "reader", "role_descriptors": {"r": {"indices": [{"names": ["team-a-*"], "privileges": ["read"]}]}}}),
        )
        .await;
    assert_eq!(status, 200, "{key}");
    let reader = Caller::new(&second.node, key["encoded"].as_str());
    let (status, body) = reader
        .post("/api/v1/team-a-logs/search", json!({"query": "*"}))
        .await;
    assert_eq!(
        status, 200,
        "a key made on node 1 must work on node 2 at once: {body}"
    );

    let id = key["id"].as_str().unwrap();
    let (status, _) = admin_first
        .send(Method::DELETE, &format!("/api/v1/api-keys/{id}"), None)
        .await;
    assert_eq!(status, 200);
    let revoked_at = Instant::now();
    loop {
        let (status, _) = reader
            .post("/api/v1/team-a-logs/search", json!({"query": "*"}))
            .await;
        if status == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "node 2 still accepts a key revoked {:?} ago",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("revocation reached node 2 after {:?}", revoked_at.elapsed());
}

/// `auth.enabled` without a bootstrap key: the first start prints an admin key once, which
/// works; a restart prints none, and the key still works.
#[tokio::test]
async fn the_first_start_prints_an_admin_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::start_with(dir.path(), &[], "auth:\n  enabled: true\n").await;
    let printed = |log: &str| -> Vec<String> {
        log.lines()
            .filter_map(|line| line.trim().strip_prefix("encoded: "))
            .map(str::to_string)
            .collect()
    };
    let keys = printed(&node.log());
    assert_eq!(keys.len(), 1, "log:\n{}", node.log());
    assert!(!node.log().contains("key_hash"));
    let admin = Caller::new(&node, Some(&keys[0]));
    assert_eq!(admin.get("/api/v1/indexes").await.0, 200);
    assert_eq!(Caller::new(&node, None).get("/api/v1/indexes").await.0, 401);
    node.restart().await;
    assert_eq!(printed(&node.log()).len(), 1, "a second key was printed");
    assert_eq!(admin.get("/api/v1/indexes").await.0, 200);
}

/// A cluster node with authentication on needs a cluster secret, or its internal routes
/// would bypass the keys: it refuses to start, saying so.
#[tokio::test]
async fn a_secured_cluster_node_without_a_cluster_secret_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::configure(
        dir.path(),
        &[],
        &format!(
            "node_id: lonely\npeer_seeds: [127.0.0.1:9]\nauth:\n  bootstrap_api_key: {ADMIN_ID}:{ADMIN_SECRET}\n"
        ),
    );
    node.spawn_unchecked();
    let status = node
        .wait_exit(Duration::from_secs(30))
        .expect("the node must exit");
    assert!(!status.success());
    assert!(
        node.log().contains("`cluster_secret` is not"),
        "{}",
        node.log()
    );
}

/// Per-key limits: over them a tenant gets 429 with `Retry-After`, counted per key in
/// `/metrics`, while another tenant on the same indexes goes on unhindered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_limits_answer_429_and_spare_other_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_secured(dir.path()).await;
    let admin = Caller::new(&node, Some(&admin_key()));
    create_tenants(&admin).await;
    let create = |name: &str, limits: Value| {
        let admin = &admin;
        let name = name.to_string();
        async move {
            let (status, key) = admin
                .post(
                    "/api/v1/api-keys",
                    json!({
                        "name": name,
                        "role_descriptors": {"r": {"indices": [{"names": ["team-a-*"], "privileges": ["read", "write"]}]}},
                        "limits": limits,
                    }),
                )
                .await;
            assert_eq!(status, 200, "{key}");
            (
                key["id"].as_str().unwrap().to_string(),
                key["encoded"].as_str().unwrap().to_string(),
            )
        }
    };
    let (limited_id, limited) = create(
        "limited",
        json!({"ingest_bytes_per_second": 2000, "max_concurrent_searches": 1}),
    )
    .await;
    let (_, free) = create("free", Value::Null).await;
    let limited = Caller::new(&node, Some(&limited));
    let free = Caller::new(&node, Some(&free));
    let (_, listed) = admin.get("/api/v1/api-keys?name=limited").await;
    assert_eq!(
        listed["api_keys"][0]["limits"]["max_concurrent_searches"], 1,
        "{listed}"
    );

    // 10 KB at 2 KB/s: accepted, and the next request waits about 4 s.
    let big: String = (0..100)
        .map(|n| json!({"ts": 1_767_225_600 + n, "body": "x".repeat(60)}).to_string() + "\n")
        .collect();
    assert!(big.len() > 8_000);
    let (status, body) = limited
        .send(
            Method::POST,
            "/api/v1/team-a-logs/ingest",
            Some(big.clone()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, retry_after) = limited
        .status_and_retry_after(
            Method::POST,
            "/api/v1/team-a-logs/ingest",
            Some(big.clone()),
        )
        .await;
    assert_eq!(status, 429);
    assert!(
        retry_after.is_some_and(|seconds| (2..=6).contains(&seconds)),
        "Retry-After: {retry_after:?}"
    );
    let (status, body) = limited
        .send(Method::POST, "/api/v1/_elastic/_bulk", Some("{\"index\": {\"_index\": \"team-a-logs\"}}\n{\"ts\": 1767225600, \"body\": \"b\"}\n".to_string()))
        .await;
    assert_eq!(status, 429, "_bulk shares the ingest limit: {body}");
    assert_eq!(
        body["error"]["type"], "es_rejected_execution_exception",
        "{body}"
    );
    let (status, body) = free
        .send(Method::POST, "/api/v1/team-a-logs/ingest", Some(big))
        .await;
    assert_eq!(status, 200, "another tenant is not held back: {body}");

    // One search at a time: of several at once, some are turned away; not the free key's.
    let msearch: String = (0..40)
        .map(|_| "{\"index\": \"team-a-logs\"}\n{\"size\": 5, \"aggs\": {\"per_second\": {\"date_histogram\": {\"field\": \"ts\", \"fixed_interval\": \"1s\"}}}}\n")
        .collect();
    let statuses = limited
        .concurrent_statuses(6, "/api/v1/_elastic/_msearch", &msearch)
        .await;
    assert!(
        statuses.contains(&200) && statuses.contains(&429),
        "{statuses:?}"
    );
    let statuses = free
        .concurrent_statuses(6, "/api/v1/_elastic/_msearch", &msearch)
        .await;
    assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");

    let (_, metrics) = admin.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    for limit in ["ingest_bytes", "searches"] {
        assert!(
            metrics
                .lines()
                .any(|line| line.starts_with("quarry_tenant_throttled_total")
                    && line.contains(&limited_id)
                    && line.contains(&format!("limit=\"{limit}\""))),
            "no {limit} throttling counted for the key in:\n{metrics}"
        );
    }
}

/// The REST API over TLS, on one node and between the nodes of a cluster: API keys travel
/// encrypted, clients that do not trust the CA are refused, plain HTTP gets nothing, and
/// nodes reach each other's metastore and leaf routes over HTTPS with the cluster's CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_and_node_to_node_calls_run_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_certificates(dir.path());
    let https = https_client(&ca);
    let shared = dir
        .path()
        .join("shared")
        .join("indexes")
        .display()
        .to_string();
    let auth = format!("auth:\n  bootstrap_api_key: {ADMIN_ID}:{ADMIN_SECRET}\n");
    let mut nodes = Vec::new();
    let mut seed = None;
    for (node_id, services) in [
        ("node-1", "metastore, control_plane, indexer, searcher"),
        ("node-2", "indexer, searcher"),
    ] {
        let mut node = configure_with(dir.path(), node_id, services, seed, &shared, &shared, &auth);
        node.node.serve_tls(&tls_yaml(&ca, &cert, &key));
        node.node.spawn_unchecked();
        wait_ready_https(&https, &node.node).await;
        seed = Some(node.gossip_port);
        nodes.push(node);
    }
    let admin = format!("ApiKey {}", admin_key());
    let second = &nodes[1].node;
    // Searches spread over the nodes once each sees the other ready.
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in &nodes {
        loop {
            let cluster: Value = https
                .get(format!("{}/api/v1/cluster", node.node.endpoint))
                .header("authorization", &admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let ready = cluster["live_nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|member| member["ready"] == json!(true))
                .count();
            if ready == 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the nodes never saw each other: {cluster}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Plain HTTP to the TLS port gets no answer; a client without the CA is refused.
    let plain = second.endpoint.replacen("https://", "http://", 1);
    assert!(reqwest::get(format!("{plain}/health/livez"))
        .await
        .map(|response| !response.status().is_success())
        .unwrap_or(true));
    assert!(reqwest::get(format!("{}/health/livez", second.endpoint))
        .await
        .is_err());

    // Through node 2, which calls node 1's metastore over HTTPS.
    let response = https
        .post(format!("{}/api/v1/indexes", second.endpoint))
        .header("authorization", &admin)
        .header("content-type", "application/yaml")
        .body(index_config("tls-logs"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
    for batch in 0..4 {
        let ndjson: String = (0..5)
            .map(|n| {
                json!({"ts": 1_767_225_600 + batch * 10 + n, "body": "over tls"}).to_string() + "\n"
            })
            .collect();
        let response = https
            .post(format!(
                "{}/api/v1/tls-logs/ingest?commit=force",
                nodes[batch as usize % 2].node.endpoint
            ))
            .header("authorization", &admin)
            .body(ndjson)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }
    // Every node's searches cover every split: some leaves run on the other node.
    for node in &nodes {
        let answer: Value = https
            .post(format!("{}/api/v1/tls-logs/search", node.node.endpoint))
            .header("authorization", &admin)
            .json(&json!({"query": "over", "max_hits": 0}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["num_hits"], 20, "{answer}");
        assert!(
            answer["errors"].as_array().is_none_or(Vec::is_empty),
            "{answer}"
        );
    }
    let mut remote_leaves = 0.0;
    for node in &nodes {
        let text = https
            .get(format!("{}/metrics", node.node.endpoint))
            .header("authorization", &admin)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        remote_leaves += text
            .lines()
            .find_map(|line| {
                line.strip_prefix("quarry_searcher_leaf_requests_from_other_nodes_total ")
            })
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    assert!(
        remote_leaves > 0.0,
        "no leaf request went between the nodes"
    );

    // A key's limits hold for the cluster: each of the two nodes admits half of the rate,
    // so a second 70 KB body right after a first one is over this node's 50 KB/s share
    // (a node holding the whole 100 KB/s would take both).
    let created: Value = https
        .post(format!("{}/api/v1/api-keys", nodes[0].node.endpoint))
        .header("authorization", &admin)
        .json(&json!({
            "name": "limited-writer",
            "role_descriptors": {"w": {"indices": [{"names": ["tls-logs"], "privileges": ["write"]}]}},
            "limits": {"ingest_bytes_per_second": 100_000},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let limited = format!("ApiKey {}", created["encoded"].as_str().unwrap());
    let body =
        (json!({"ts": 1_767_225_700, "body": "x".repeat(690)}).to_string() + "\n").repeat(100);
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let response = https
            .post(format!("{}/api/v1/tls-logs/ingest", second.endpoint))
            .header("authorization", &limited)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 429], "the cluster share was not applied");

    // The CLI, trusting the test CA.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args(["index", "list", "--endpoint", &second.endpoint, "--ca-cert"])
        .arg(&ca)
        .args(["--api-key", &format!("{ADMIN_ID}:{ADMIN_SECRET}")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("tls-logs"),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Guessing keys from one address is cut short: past 50 failures in a minute, the address
/// gets 429 with `Retry-After`, even with a valid key, until the minute is over.
#[tokio::test]
async fn an_address_that_keeps_failing_to_authenticate_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_secured(dir.path()).await;
    let admin = Caller::new(&node, Some(&admin_key()));
    let guesser = Caller::new(&node, Some(&encode(ADMIN_ID, "a-wrong-guess")));
    let mut statuses = Vec::new();
    for _ in 0..55 {
        statuses.push(guesser.get("/api/v1/indexes").await.0);
    }
    assert!(
        statuses[..50].iter().all(|status| *status == 401),
        "{statuses:?}"
    );
    assert!(
        statuses[50..].iter().all(|status| *status == 429),
        "{statuses:?}"
    );
    let (status, retry_after) = admin
        .status_and_retry_after(Method::GET, "/api/v1/indexes", None)
        .await;
    assert_eq!(status, 429);
    assert!(
        retry_after.is_some_and(|seconds| (1..=60).contains(&seconds)),
        "Retry-After: {retry_after:?}"
    );
    // Open routes stay open, and the secret is never written to the log.
    assert_eq!(admin.get("/health/livez").await.0, 200);
    assert!(!node.log().contains("a-wrong-guess"));
    assert!(!node.log().contains(ADMIN_SECRET));
}
