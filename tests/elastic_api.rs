//! The Elasticsearch-compatible API's stateful parts against a real node: `_bulk` `_id`
//! deduplication across a restart, indexes created on first use from templates, scroll over
//! a snapshot of splits, and date formats in `fields`.

mod common;

use std::collections::HashSet;

use common::{bulk_item_results, TestNode};
use reqwest::Method;
use serde_json::{json, Value};

const CONFIG: &str = "index_id: es-logs\ndoc_mapping:\n  mode: strict\n  field_mappings:\n    - {name: ts, type: datetime, input_formats: [rfc3339, unix_timestamp], fast: true}\n    - {name: level, type: text, tokenizer: raw, fast: true}\n  timestamp_field: ts\n";

fn bulk_body(ids: std::ops::Range<usize>) -> String {
    let mut body = String::new();
    for id in ids {
        body.push_str(&format!("{{\"index\": {{\"_id\": \"doc-{id}\"}}}}\n"));
        let level = if id % 3 == 0 { "ERROR" } else { "INFO" };
        body.push_str(&format!(
            "{{\"ts\": \"2026-03-01T00:{:02}:{:02}.250Z\", \"level\": \"{level}\"}}\n",
            id / 60 % 60,
            id % 60
        ));
    }
    body
}

async fn bulk(node: &TestNode, body: String) -> Value {
    let (status, answer) = node
        .request(
            Method::POST,
            "/api/v1/_elastic/es-logs/_bulk?refresh=true",
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
async fn bulk_ids_are_indexed_once_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::start(dir.path()).await;
    node.create_index(CONFIG).await;

    let first = bulk(&node, bulk_body(0..100)).await;
    assert_eq!(first["errors"], json!(false), "{first}");
    assert!(bulk_item_results(&first)
        .iter()
        .all(|result| result == "created"));

    // A shipper's retry of a batch that half went through, plus an id repeated within it.
    let mut retry = bulk_body(50..150);
    retry.push_str(&bulk_body(149..150));
    let second = bulk(&node, retry).await;
    let outcomes = bulk_item_results(&second);
    assert_eq!(outcomes.iter().filter(|r| *r == "noop").count(), 51);
    assert_eq!(outcomes.iter().filter(|r| *r == "created").count(), 50);
    assert_eq!(second["items"][0]["index"]["status"], json!(200));
    assert_eq!(node.count("es-logs", "*").await, 150);

    // The window survives a restart.
    node.restart().await;
    let third = bulk(&node, bulk_body(140..160)).await;
    let outcomes = bulk_item_results(&third);
    assert_eq!(outcomes.iter().filter(|r| *r == "noop").count(), 10);
    assert_eq!(outcomes.iter().filter(|r| *r == "created").count(), 10);
    assert_eq!(node.count("es-logs", "*").await, 160);

    // A document the mapping refused is indexed when retried corrected.
    let bad = "{\"index\": {\"_id\": \"fixed\"}}\n{\"ts\": \"not a date\"}\n".to_string();
    assert_eq!(bulk_item_results(&bulk(&node, bad).await), vec!["error"]);
    let good =
        "{\"index\": {\"_id\": \"fixed\"}}\n{\"ts\": \"2026-03-01T01:00:00Z\"}\n".to_string();
    assert_eq!(bulk_item_results(&bulk(&node, good).await), vec!["created"]);

    // Hits carry the ids given, not internal addresses.
    let (status, answer) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_search",
            &json!({"size": 200, "query": {"match_all": {}}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let ids: HashSet<String> = answer["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["_id"].as_str().unwrap().to_string())
        .collect();
    let mut expected: HashSet<String> = (0..160).map(|id| format!("doc-{id}")).collect();
    expected.insert("fixed".to_string());
    assert_eq!(ids, expected);
    // `_id` is metadata, not part of the source.
    assert!(answer["hits"]["hits"][0]["_source"].get("_id").is_none());
}

async fn scroll_page(node: &TestNode, scroll_id: &str) -> Value {
    let (status, page) = node
        .post_json(
            "/api/v1/_elastic/_search/scroll",
            &json!({"scroll": "1m", "scroll_id": scroll_id}),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page
}

#[tokio::test]
async fn scroll_walks_a_snapshot_once_and_fields_take_date_formats() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    node.create_index(CONFIG).await;
    // Three splits.
    for range in [0..400, 400..700, 700..1000] {
        bulk(&node, bulk_body(range)).await;
    }
    let expected_errors = (0..1000).filter(|id| id % 3 == 0).count();

    let (status, first) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_search?scroll=1m",
            &json!({"size": 100, "query": {"term": {"level": "ERROR"}}, "sort": ["_doc"]}),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["hits"]["total"]["value"], json!(expected_errors));
    let scroll_id = first["_scroll_id"].as_str().unwrap().to_string();

    // Documents published after the scroll opened are not part of it.
    bulk(&node, bulk_body(1000..1300)).await;

    let mut seen: Vec<String> = Vec::new();
    let mut page = first;
    loop {
        let hits = page["hits"]["hits"].as_array().unwrap().clone();
        if hits.is_empty() {
            break;
        }
        assert_eq!(page["_scroll_id"], json!(scroll_id));
        seen.extend(
            hits.iter()
                .map(|hit| hit["_id"].as_str().unwrap().to_string()),
        );
        page = scroll_page(&node, &scroll_id).await;
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), expected_errors, "every hit once");
    assert_eq!(unique.len(), expected_errors);

    // Cleared, the context is gone.
    let (status, cleared) = node
        .request(
            Method::DELETE,
            "/api/v1/_elastic/_search/scroll",
            "application/json",
            json!({"scroll_id": [scroll_id]}).to_string(),
        )
        .await;
    assert_eq!(
        (status, &cleared),
        (200, &json!({"succeeded": true, "num_freed": 1}))
    );
    let (status, missing) = node
        .post_json(
            "/api/v1/_elastic/_search/scroll",
            &json!({"scroll_id": scroll_id}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        missing["error"]["type"],
        json!("search_context_missing_exception")
    );

    // Bad scroll requests are refused by name.
    let (status, refused) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_search?scroll=1m",
            &json!({"from": 10}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(refused["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("[from]"));
    let (status, refused) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_search?scroll=1fortnight",
            &json!({}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(refused["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("fortnight"));

    // Dates in `fields` take the requested format.
    let (status, answer) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_search",
            &json!({
                "size": 1,
                "query": {"term": {"level": "INFO"}},
                "sort": [{"ts": "asc"}],
                "fields": [{"field": "ts", "format": "strict_date_optional_time_nanos"}, "level"],
                "docvalue_fields": [{"field": "ts", "format": "epoch_millis"}]
            }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["hits"]["hits"][0]["fields"],
        json!({"ts": ["2026-03-01T00:00:01.250Z"], "level": ["INFO"]})
    );
    let (status, answer) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_search",
            &json!({"size": 1, "sort": [{"ts": "asc"}], "fields": [{"field": "ts", "format": "epoch_millis"}]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["hits"]["hits"][0]["fields"],
        json!({"ts": ["1772323200250"]})
    );
    let (status, refused) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_search",
            &json!({"fields": [{"field": "ts", "format": "EEE dd"}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(refused["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("EEE dd"));
}

#[tokio::test]
async fn what_official_clients_send_is_understood() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    node.create_index(CONFIG).await;
    bulk(&node, bulk_body(0..30)).await;
    let client = reqwest::Client::new();

    // `http_compress=True` gzips search bodies too.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut encoder,
        json!({"query": {"term": {"level": "ERROR"}}})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let response = client
        .post(format!("{}/api/v1/_elastic/es-logs/_count", node.endpoint))
        .header(
            "content-type",
            "application/vnd.elasticsearch+json; compatible-with=8",
        )
        .header("content-encoding", "gzip")
        .body(encoder.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["count"],
        json!((0..30).filter(|id| id % 3 == 0).count())
    );

    // `filter_path` keeps what the client reads.
    let (status, filtered) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_search?filter_path=hits.total.value,-took",
            &json!({"size": 1}),
        )
        .await;
    assert_eq!(status, 200, "{filtered}");
    assert_eq!(filtered, json!({"hits": {"total": {"value": 30}}}));

    // `_source` filtering, in the body and in the query string.
    for (path, body, expected) in [
        ("_search", json!({"size": 1, "_source": false}), None),
        (
            "_search",
            json!({"size": 1, "_source": ["lev*"]}),
            Some(json!({"level": "ERROR"})),
        ),
        (
            "_search",
            json!({"size": 1, "_source": {"excludes": ["ts"]}}),
            Some(json!({"level": "ERROR"})),
        ),
        (
            "_search?_source_includes=ts",
            json!({"size": 1}),
            Some(json!({"ts": "2026-03-01T00:00:00.250Z"})),
        ),
    ] {
        let mut body = body;
        body["query"] = json!({"term": {"level": "ERROR"}});
        body["sort"] = json!([{"ts": "asc"}]);
        let (status, answer) = node
            .post_json(&format!("/api/v1/_elastic/es-logs/{path}"), &body)
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["hits"]["hits"][0].get("_source").cloned(),
            expected,
            "{body}"
        );
    }

    // `typed_keys` names aggregation results after their type, as elasticsearch-dsl needs.
    let (status, typed) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_search?typed_keys=true&filter_path=aggregations",
            &json!({"size": 0, "aggs": {
                "levels": {"terms": {"field": "level"}, "aggs": {"latest": {"max": {"field": "ts"}}}},
                "per_minute": {"date_histogram": {"field": "ts", "fixed_interval": "1m"}}
            }}),
        )
        .await;
    assert_eq!(status, 200, "{typed}");
    let aggregations = typed["aggregations"].as_object().unwrap();
    let mut names: Vec<&String> = aggregations.keys().collect();
    names.sort();
    assert_eq!(names, ["date_histogram#per_minute", "sterms#levels"]);
    assert!(
        aggregations["sterms#levels"]["buckets"][0]
            .get("max#latest")
            .is_some(),
        "{typed}"
    );

    // `field_caps` patterns come in the body.
    let (status, caps) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_field_caps",
            &json!({"fields": "lev*"}),
        )
        .await;
    assert_eq!(status, 200, "{caps}");
    let names: Vec<&String> = caps["fields"].as_object().unwrap().keys().collect();
    assert_eq!(names, vec!["level"]);
    // And for index patterns, over every index they name.
    node.create_index(&CONFIG.replace("es-logs", "es-other"))
        .await;
    let (status, caps) = node
        .get("/api/v1/_elastic/es-*/_field_caps?fields=ts")
        .await;
    assert_eq!(status, 200, "{caps}");
    assert_eq!(caps["indices"], json!(["es-logs", "es-other"]));
    assert_eq!(
        caps["fields"]["ts"]["date_nanos"]["aggregatable"],
        json!(true)
    );
    let (status, _) = node
        .get("/api/v1/_elastic/nothing-*,missing/_field_caps")
        .await;
    assert_eq!(status, 404);

    // `indices.exists` is a HEAD on the index.
    let exists = |path: &str| {
        client
            .head(format!("{}/api/v1/_elastic/{path}", node.endpoint))
            .send()
    };
    assert_eq!(exists("es-logs").await.unwrap().status(), 200);
    assert_eq!(exists("no-such-index").await.unwrap().status(), 404);
    let (status, index) = node.get("/api/v1/_elastic/es-logs").await;
    assert_eq!(status, 200);
    assert_eq!(
        index["es-logs"]["mappings"]["properties"]["level"]["type"],
        json!("keyword")
    );
}

#[tokio::test]
async fn sorting_by_text_keys_pages_through_every_hit() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    node.create_index(CONFIG).await;
    // Two splits, so that text values compare across splits.
    bulk(&node, bulk_body(0..40)).await;
    bulk(&node, bulk_body(40..90)).await;
    let level = |id: usize| {
        if id.is_multiple_of(3) {
            "ERROR"
        } else {
            "INFO"
        }
    };
    let ts_millis = |id: usize| ((id / 60 % 60) * 60 + id % 60) as u64 * 1000 + 250;
    for (sort, compare) in [
        (
            json!([{"level": "asc"}, {"ts": "desc"}]),
            Box::new(|a: &usize, b: &usize| {
                level(*a)
                    .cmp(level(*b))
                    .then(ts_millis(*b).cmp(&ts_millis(*a)))
            }) as Box<dyn Fn(&usize, &usize) -> std::cmp::Ordering>,
        ),
        (
            json!([{"level": "desc"}]),
            Box::new(|a: &usize, b: &usize| level(*b).cmp(level(*a))),
        ),
    ] {
        let hits = node
            .es_hits_after("es-logs", json!({"size": 7, "sort": sort}), |_, _| {})
            .await;
        let seen: Vec<usize> = hits
            .iter()
            .map(|hit| {
                let id: usize = hit["_id"].as_str().unwrap()["doc-".len()..]
                    .parse()
                    .unwrap();
                assert_eq!(hit["sort"][0], json!(level(id)), "{hit}");
                id
            })
            .collect();
        assert_eq!(seen.len(), 90, "every hit once for {sort}");
        // Within ties of the sort keys the order is the engine's; the keys must be ordered.
        for pair in seen.windows(2) {
            assert_ne!(
                compare(&pair[0], &pair[1]),
                std::cmp::Ordering::Greater,
                "{sort}: {pair:?}"
            );
        }
        let unique: HashSet<usize> = seen.into_iter().collect();
        assert_eq!(unique.len(), 90);
    }
}

#[tokio::test]
async fn field_caps_lists_what_documents_put_in_json_fields() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    node.create_index(
        "index_id: dyn-logs\ndoc_mapping:\n  mode: dynamic\n  field_mappings:\n    - {name: ts, type: datetime, fast: true}\n    - {name: attributes, type: json, tokenizer: raw, fast: true}\n  timestamp_field: ts\n",
    )
    .await;
    let docs = [
        json!({"ts": 1, "user": {"name": "ann"}, "retries": 3, "code": 7, "attributes": {"http.status_code": 500, "region": "eu"}}),
        json!({"ts": 2, "code": "E42", "latency": 1.5, "attributes": {"region": "us"}}),
    ];
    let ndjson: String = docs.iter().map(|doc| format!("{doc}\n")).collect();
    node.ingest("dyn-logs", ndjson, "force").await;

    let (status, caps) = node
        .get("/api/v1/_elastic/dyn-logs/_field_caps?fields=*")
        .await;
    assert_eq!(status, 200, "{caps}");
    insta::assert_json_snapshot!("field_caps_json_paths", caps);
    // A path with values of two types has one entry per type, as in Elasticsearch.
    let code_types: Vec<&String> = caps["fields"]["code"].as_object().unwrap().keys().collect();
    assert_eq!(code_types, ["long", "text"], "{caps}");

    // Patterns apply to the paths found as to mapped fields.
    let (_, caps) = node
        .post_json(
            "/api/v1/_elastic/dyn-logs/_field_caps",
            &json!({"fields": ["attributes.*", "user.*"]}),
        )
        .await;
    let names: Vec<&String> = caps["fields"].as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "attributes.http.status_code",
            "attributes.region",
            "user.name"
        ]
    );
    // The paths found are the ones queries use.
    let (status, found) = node
        .post_json(
            "/api/v1/_elastic/dyn-logs/_search",
            &json!({"query": {"term": {"attributes.region": "eu"}}}),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["hits"]["total"]["value"], json!(1), "{found}");
}

/// Requests that once took a node down (a stack overflow aborts the process; a panic
/// dropped the connection) get a 400 naming what was wrong, and the node goes on.
#[tokio::test]
async fn hostile_queries_get_a_400_and_the_node_survives() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    node.create_index(CONFIG).await;
    bulk(&node, bulk_body(0..10)).await;

    let deep = format!("{}level:ERROR{}", "(".repeat(20_000), ")".repeat(20_000));
    let (status, body) = node
        .post_json("/api/v1/es-logs/search", &json!({"query": deep}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("nested deeper than 32 levels"),
        "{body}"
    );
    let negations = format!("{}level:ERROR", "-".repeat(200_000));
    let (status, body) = node
        .post_json("/api/v1/es-logs/search", &json!({"query": negations}))
        .await;
    assert_eq!(status, 200, "{body}");

    let mut nested_bools = json!({"term": {"level": "ERROR"}});
    for _ in 0..100 {
        nested_bools = json!({"bool": {"must": [nested_bools]}});
    }
    let (status, body) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_search",
            &json!({"query": nested_bools}),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    for bound in [
        "now+99999999999999999d",
        "now-9223372036854775807y",
        "now+99999999999d",
        "now+1é",
        "now-1日/d",
    ] {
        let (status, body) = node
            .post_json(
                "/api/v1/_elastic/es-logs/_search",
                &json!({"query": {"range": {"ts": {"gte": bound}}}}),
            )
            .await;
        assert_eq!(status, 400, "`{bound}`: {body}");
        assert!(body.to_string().contains(bound), "`{bound}`: {body}");
    }

    let (status, body) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_search",
            &json!({"query": {"query_string": {"query": "level:ERROR"}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hits"]["total"]["value"], 4, "{body}");
    let (status, _) = node.get("/health/livez").await;
    assert_eq!(status, 200);
}

/// A fractional epoch in seconds is the instant the sender wrote: a range from the same
/// instant in milliseconds (what Grafana sends) finds it, and it comes back to the
/// millisecond.
#[tokio::test]
async fn fractional_epoch_seconds_keep_their_milliseconds() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    node.create_index(CONFIG).await;
    let body = "{\"index\": {\"_id\": \"f1\"}}\n{\"ts\": 1668422437.218, \"level\": \"INFO\"}\n";
    bulk(&node, body.to_string()).await;
    let (status, answer) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_search",
            &json!({
                "query": {"range": {"ts": {"gte": 1668422437218i64, "lte": 1668422437218i64, "format": "epoch_millis"}}},
                "fields": [{"field": "ts", "format": "epoch_millis"}],
            }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["hits"]["total"]["value"], 1, "{answer}");
    let millis = &answer["hits"]["hits"][0]["fields"]["ts"][0];
    assert!(
        millis == &json!(1668422437218i64) || millis == &json!("1668422437218"),
        "{answer}"
    );
}

/// An item `_bulk` indexed without an `_id` is answered with the id Quarry gave it, and
/// searches return the same id: one id per document, everywhere.
#[tokio::test]
async fn generated_bulk_ids_are_the_ids_hits_carry() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    node.create_index(CONFIG).await;
    let body = "{\"index\": {}}\n{\"ts\": 1767225600, \"level\": \"INFO\"}\n{\"create\": {}}\n{\"ts\": 1767225601, \"level\": \"WARN\"}\n";
    let answer = bulk(&node, body.to_string()).await;
    let answered: HashSet<String> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let action = item.as_object().unwrap().values().next().unwrap();
            action["_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(answered.len(), 2, "{answer}");
    let (status, hits) = node
        .post_json("/api/v1/_elastic/es-logs/_search", &json!({"size": 10}))
        .await;
    assert_eq!(status, 200, "{hits}");
    let returned: HashSet<String> = hits["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(returned, answered, "{hits}");
    let source = &hits["hits"]["hits"][0]["_source"];
    assert!(
        source.get("_id").is_none(),
        "the id is not part of the source: {source}"
    );
    // The get API and `ids` queries find documents by that id, given or generated.
    bulk(&node, bulk_body(0..3)).await;
    let generated = answered.iter().next().unwrap().clone();
    for id in [generated.as_str(), "doc-1"] {
        let (status, found) = node
            .get(&format!("/api/v1/_elastic/es-logs/_doc/{id}"))
            .await;
        assert_eq!(
            (status, found["found"].clone()),
            (200, json!(true)),
            "{found}"
        );
        assert_eq!(found["_id"], id);
        assert!(found["_source"].get("ts").is_some(), "{found}");
    }
    let (status, missing) = node.get("/api/v1/_elastic/es-logs/_doc/nope").await;
    assert_eq!(
        (status, missing["found"].clone()),
        (404, json!(false)),
        "{missing}"
    );
    let (status, by_ids) = node
        .post_json(
            "/api/v1/_elastic/es-logs/_search",
            &json!({"query": {"ids": {"values": ["doc-0", "doc-2", generated]}}}),
        )
        .await;
    assert_eq!(status, 200, "{by_ids}");
    assert_eq!(by_ids["hits"]["total"]["value"], 3, "{by_ids}");
}

const LOG_ID_CONFIG: &str = "index_id: id-logs\ndoc_mapping:\n  field_mappings:\n    - {name: ts, type: datetime, fast: true}\n    - {name: n, type: u64, fast: true}\n  timestamp_field: ts\nindexing_settings:\n  commit_timeout_secs: 300\n  merge_policy: {type: stable_log, min_level_num_docs: 1000, merge_factor: 2, max_merge_factor: 2}\n";

fn numbered_bulk(numbers: std::ops::Range<u64>) -> String {
    numbers
        .map(|n| {
            format!(
                "{{\"index\": {{}}}}\n{{\"ts\": {}, \"n\": {n}}}\n",
                1_767_225_600 + n
            )
        })
        .collect()
}

/// The `_id`s `_bulk` answers for documents sent without one, in order.
async fn bulk_generated_ids(
    node: &TestNode,
    params: &str,
    numbers: std::ops::Range<u64>,
) -> Vec<String> {
    let (status, answer) = node
        .request(
            Method::POST,
            &format!("/api/v1/_elastic/id-logs/_bulk{params}"),
            "application/x-ndjson",
            numbered_bulk(numbers),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["index"]["_id"].as_str().unwrap().to_string())
        .collect()
}

/// `n` → `_id` of every document, read through the ES search API.
async fn ids_by_number(node: &TestNode) -> std::collections::BTreeMap<u64, String> {
    let (status, answer) = node
        .post_json("/api/v1/_elastic/id-logs/_search", &json!({"size": 100}))
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| {
            (
                hit["_source"]["n"].as_u64().unwrap(),
                hit["_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Documents sent without an `_id`, through `_bulk` or native ingest, get one when they are
/// logged. It is the same after a crash replays the log and after their splits merge: a
/// document read once is found again by its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_ids_survive_replay_and_merges() {
    let dir = tempfile::tempdir().unwrap();
    let mut node =
        TestNode::start_with(dir.path(), &[], "indexer:\n  merge_interval_secs: 1\n").await;
    node.create_index(LOG_ID_CONFIG).await;
    // Acknowledged, not yet in a split: the node dies and replays them from its log.
    let mut answered = bulk_generated_ids(&node, "", 0..3).await;
    node.kill9();
    node.start_again().await;
    answered.extend(bulk_generated_ids(&node, "?refresh=true", 3..6).await);
    // Native ingest answers no ids; hits carry them.
    let native: String = (6..9)
        .map(|n| json!({"ts": 1_767_225_600 + n, "n": n}).to_string() + "\n")
        .collect();
    node.ingest("id-logs", native, "force").await;

    let before_merge = ids_by_number(&node).await;
    assert_eq!(before_merge.len(), 9, "{before_merge:?}");
    let expected: Vec<(u64, String)> = (0..6).zip(answered.iter().cloned()).collect();
    assert_eq!(
        before_merge.clone().into_iter().take(6).collect::<Vec<_>>(),
        expected,
        "bulk answers with the ids hits carry, replayed or not"
    );
    let distinct: HashSet<&String> = before_merge.values().collect();
    assert_eq!(distinct.len(), 9);

    // The two splits merge into one.
    let started = std::time::Instant::now();
    loop {
        let (_, splits) = node.get("/api/v1/indexes/id-logs/splits").await;
        let published: Vec<&Value> = splits["splits"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|split| split["split_state"] == json!("published"))
            .collect();
        if published.len() == 1 && published[0]["split_metadata"]["num_merge_ops"] == json!(1) {
            assert_ne!(
                published[0]["split_metadata"]["schema_fingerprint"],
                json!(0)
            );
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the splits did not merge: {splits}\n{}",
            node.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    assert_eq!(ids_by_number(&node).await, before_merge);
    for (n, id) in &before_merge {
        let (status, found) = node
            .get(&format!("/api/v1/_elastic/id-logs/_doc/{id}"))
            .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["_source"]["n"], json!(n), "{found}");
    }
    let all_ids: Vec<&String> = before_merge.values().collect();
    let (status, by_ids) = node
        .post_json(
            "/api/v1/_elastic/id-logs/_search",
            &json!({"query": {"ids": {"values": all_ids}}, "size": 20}),
        )
        .await;
    assert_eq!(status, 200, "{by_ids}");
    assert_eq!(by_ids["hits"]["total"]["value"], 9, "{by_ids}");
    // An id of another shard, position or line finds nothing.
    let (status, missing) = node
        .get("/api/v1/_elastic/id-logs/_doc/AAAAAAAAAAABAA")
        .await;
    assert_eq!(
        (status, missing["found"].clone()),
        (404, json!(false)),
        "{missing}"
    );
    node.stop();
}

/// Log shippers write to indexes nobody created, in their own `_bulk` dialects: rsyslog's
/// `omelasticsearch` (`create` with `_type`), Fluent Bit's `es` output (`index` with
/// `_type`), Vector's sink (`pipeline`/`routing` parameters). An index matching a template
/// is created on first use, timed by `@timestamp`; other unknown names are refused.
#[tokio::test]
async fn shipper_bulk_creates_indexes_from_templates() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start_with(
        dir.path(),
        &[],
        "index_templates:\n  - template_id: shipped-logs\n    index_id_patterns: [logs-*]\n    doc_mapping:\n      tag_fields: [host]\n      field_mappings:\n        - {name: host, type: text, tokenizer: raw, fast: true}\n",
    )
    .await;
    let body = [
        r#"{"create": {"_index": "logs-rsyslog", "_type": "_doc"}}"#,
        r#"{"@timestamp": "2026-01-01T00:00:00.000Z", "host": "web-1", "message": "sshd accepted"}"#,
        r#"{"index": {"_index": "logs-fluentbit", "_type": "flb_type"}}"#,
        r#"{"@timestamp": "2026-01-01T00:00:01.000Z", "host": "web-2", "log": "GET /"}"#,
        r#"{"index": {"_index": "logs-fluentbit"}}"#,
        r#"{"host": "web-3", "log": "no timestamp"}"#,
        r#"{"index": {"_index": "metrics-cpu"}}"#,
        r#"{"@timestamp": "2026-01-01T00:00:02.000Z", "value": 1}"#,
    ]
    .map(|line| format!("{line}\n"))
    .concat();
    let (status, answer) = node
        .request(
            Method::POST,
            "/api/v1/_elastic/_bulk?pipeline=shipper&routing=r1&refresh=true",
            "application/x-ndjson",
            body.clone(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], true, "{answer}");
    let statuses: Vec<u64> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let (_, result) = item.as_object().unwrap().iter().next().unwrap();
            result["status"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(statuses, [201, 201, 400, 404], "{answer}");
    let reason = answer["items"][2]["index"]["error"]["reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("@timestamp"), "{reason}");
    assert_eq!(
        answer["items"][3]["index"]["error"]["type"],
        "index_not_found_exception"
    );

    let (status, description) = node.get("/api/v1/indexes/logs-rsyslog").await;
    assert_eq!(status, 200, "{description}");
    assert_eq!(description["timestamp_field"], "@timestamp");
    assert_eq!(
        description["index_config"]["doc_mapping"]["tag_fields"],
        json!(["host"])
    );
    assert_eq!(node.count("logs-*", "*").await, 2);
    assert_eq!(node.count("logs-rsyslog", "host:web-1").await, 1);
    assert_eq!(node.get("/api/v1/indexes/metrics-cpu").await.0, 404);

    // The same batch again: the indexes exist now, and nothing is created twice.
    let (status, answer) = node
        .request(
            Method::POST,
            "/api/v1/_elastic/_bulk?refresh=true",
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(node.count("logs-*", "*").await, 4);
    let (_, indexes) = node.get("/api/v1/indexes").await;
    let mut ids: Vec<&str> = indexes
        .as_array()
        .unwrap()
        .iter()
        .map(|index| index["index_config"]["index_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["logs-fluentbit", "logs-rsyslog"]);
}

/// Hits return each document as it was sent: dates in the sender's spelling, epoch numbers
/// as numbers, nested keys with dots, escapes. The source store is the only stored copy of
/// the fields, so highlighting reads its text from there too.
#[tokio::test]
async fn documents_come_back_as_they_were_sent() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(dir.path()).await;
    node.create_index(
        "index_id: as-sent\ndoc_mapping:\n  mode: dynamic\n  field_mappings:\n    - {name: ts, type: datetime, input_formats: [rfc3339, unix_timestamp], fast: true}\n    - {name: msg, type: text}\n    - {name: level, type: text, tokenizer: raw, fast: true}\n  timestamp_field: ts\n",
    )
    .await;
    let sent = [
        r#"{"ts":"2026-01-01T00:00:19.184000Z","msg":"payment failed for order 7","level":"ERROR","trace_id":"aeb53b340c1039714a69db9873af8965"}"#,
        r#"{"ts":1767225620,"msg":"a \"quoted\" word, caf\u00e9","level":"INFO","epoch":1668422616918,"attrs":{"http.status":503,"tags":["a",null,true,-1.5]}}"#,
        r#"{"level":"WARN","ts":"2026-01-01T00:00:21+01:00","msg":"order failed again","n":0}"#,
        // What a parser would re-spell: spacing, `1.50`, `1e3`, an integer past 2^64, escapes.
        r#"{ "level" : "DEBUG", "ts": 1767225622, "price": 1.50, "exp": 1e3, "big": 123456789012345678901234567890, "msg": "caf\u00e9 \/ ok", "nested": {"a" :[1 ,2.0]} }"#,
    ];
    // One split per line: hits come from several splits' source stores.
    for line in sent {
        node.ingest("as-sent", format!("{line}\n"), "force").await;
    }
    let by_level = |answer: &Value| -> std::collections::BTreeMap<String, Value> {
        answer["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hit| {
                let source = hit["_source"].clone();
                (source["level"].as_str().unwrap().to_string(), source)
            })
            .collect()
    };
    let (status, answer) = node
        .post_json(
            "/api/v1/_elastic/as-sent/_search",
            &json!({"size": 10, "query": {"match": {"msg": "failed"}}, "highlight": {"fields": {"msg": {}}}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["hits"]["total"]["value"], 2, "{answer}");
    for hit in answer["hits"]["hits"].as_array().unwrap() {
        let fragment = hit["highlight"]["msg"][0].as_str().unwrap_or_default();
        assert!(fragment.contains("<em>failed</em>"), "{hit}");
    }
    let (_, everything) = node
        .post_json("/api/v1/_elastic/as-sent/_search", &json!({"size": 10}))
        .await;
    let hits = by_level(&everything);
    for line in sent {
        let expected: Value = serde_json::from_str(line).unwrap();
        let level = expected["level"].as_str().unwrap();
        assert_eq!(hits[level], expected, "{everything}");
    }
    assert_eq!(hits["ERROR"]["ts"], "2026-01-01T00:00:19.184000Z");
    assert_eq!(hits["INFO"]["epoch"], 1668422616918i64);
    assert_eq!(hits["WARN"]["ts"], "2026-01-01T00:00:21+01:00");
    let native = node
        .search("as-sent", json!({"query": "level:INFO", "max_hits": 1}))
        .await;
    assert_eq!(
        native["hits"][0],
        serde_json::from_str::<Value>(sent[1]).unwrap(),
        "{native}"
    );
    // Each split's block was read once, then found in the cache.
    let (_, metrics) = node
        .request(Method::GET, "/metrics", "text/plain", "")
        .await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    assert_eq!(
        counter("quarry_searcher_source_block_cache_misses_total"),
        4
    );
    assert!(counter("quarry_searcher_source_block_cache_hits_total") >= 3);

    // Byte for byte, through every API that returns sources.
    let text = |method: Method, path: &'static str, content_type: &'static str, body: String| {
        let node = &node;
        async move {
            let (status, text) = node.request_text(method, path, content_type, body).await;
            assert_eq!(status, 200, "{path}: {text}");
            text
        }
    };
    let search_body = json!({"size": 10}).to_string();
    let responses = [
        text(
            Method::POST,
            "/api/v1/_elastic/as-sent/_search",
            "application/json",
            search_body.clone(),
        )
        .await,
        text(
            Method::POST,
            "/api/v1/as-sent/search",
            "application/json",
            json!({"query": "*", "max_hits": 10}).to_string(),
        )
        .await,
        text(
            Method::POST,
            "/api/v1/_elastic/_msearch",
            "application/x-ndjson",
            format!("{{\"index\": \"as-sent\"}}\n{search_body}\n"),
        )
        .await,
        text(
            Method::POST,
            "/api/v1/_elastic/as-sent/_search?scroll=1m",
            "application/json",
            search_body,
        )
        .await,
    ];
    for (response, line) in responses
        .iter()
        .flat_map(|response| sent.iter().map(move |line| (response, line)))
    {
        assert!(response.contains(line), "{line} not in {response}");
    }
    let id = everything["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|hit| hit["_source"]["level"] == "DEBUG")
        .map(|hit| hit["_id"].as_str().unwrap().to_string())
        .unwrap();
    let (status, got) = node
        .request_text(
            Method::GET,
            &format!("/api/v1/_elastic/as-sent/_doc/{id}"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(status, 200, "{got}");
    assert!(got.contains(sent[3]), "{got}");
    // A filtered source is written anew, as Elasticsearch does.
    let (_, filtered) = node
        .post_json(
            "/api/v1/_elastic/as-sent/_search",
            &json!({"size": 10, "_source": ["level", "price"], "query": {"term": {"level": "DEBUG"}}}),
        )
        .await;
    assert_eq!(
        filtered["hits"]["hits"][0]["_source"],
        json!({"level": "DEBUG", "price": 1.5}),
        "{filtered}"
    );
}
