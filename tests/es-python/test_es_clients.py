"""Compatibility tests: the official Elasticsearch Python client against Quarry.

The client talks to `{QUARRY_URL}/api/v1/_elastic`, Quarry's Elasticsearch-compatible
API, exactly as it would talk to Elasticsearch. Every expected value is computed here
from the generated documents; nothing is hard-coded. Expected response shapes are
Elasticsearch's documented ones.

Environment:
- QUARRY_URL: the node root, e.g. http://127.0.0.1:7280 (required);
- QUARRY_ES_INDEX: the index to create (default: es-py-<client major>-<random>); it
  must not exist yet;
- QUARRY_ES_KEEP_INDEX=1: keep the index after the run (default: delete it).

Run it through run.sh, which installs the pinned client versions.
"""

import bisect
import calendar
import json
import math
import os
import random
import re
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import elasticsearch
import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError, helpers

CLIENT_MAJOR = elasticsearch.__version__[0]
QUARRY_URL = os.environ.get("QUARRY_URL", "").rstrip("/")
# The `encoded` form of an API key, for nodes with authentication on.
API_KEY = os.environ.get("QUARRY_API_KEY") or None
# The CA of a node that serves HTTPS.
CA_CERT = os.environ.get("QUARRY_CA_CERT") or None
SSL_CONTEXT = ssl.create_default_context(cafile=CA_CERT) if CA_CERT else None
INDEX = os.environ.get("QUARRY_ES_INDEX") or (
    f"es-py-{CLIENT_MAJOR}-{uuid.uuid4().hex[:10]}"
)

NUM_DOCS = 10_000
# Documents come in pairs that share a timestamp, so sorting by time has ties.
PAIR_SPACING_MS = 1_500_000
# No documents for 4 days in the middle: empty date_histogram buckets.
GAP_AFTER_PAIR = 2_500
GAP_MS = 4 * 86_400_000
BASE = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday
BASE_MS = calendar.timegm(BASE.utctimetuple()) * 1000
DAY_MS = 86_400_000
HOUR_MS = 3_600_000

SERVICES = [
    ("api-gateway", 30),
    ("payments", 15),
    ("checkout", 15),
    ("inventory", 12),
    ("auth", 12),
    ("search", 10),
    ("notifications", 6),
]
SEVERITIES = [("DEBUG", 10), ("INFO", 55), ("WARN", 22), ("ERROR", 13)]
BODIES = {
    "DEBUG": ["entering handler {word}", "cache miss for key {key}"],
    "INFO": [
        "request completed in {ms} ms for user {user}",
        "GET /api/v1/items/{n} returned 200",
        "cache hit for key {key}",
    ],
    "WARN": [
        "slow query took {ms} ms",
        "retrying request after timeout",
        "connection pool nearly exhausted",
        "peer reset by connection during handshake",
    ],
    "ERROR": [
        "connection reset by peer",
        "payment failed: card declined",
        "upstream timeout after {ms} ms",
        "failed to write to disk: disk full",
    ],
}
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]


# --------------------------------------------------------------------------------------
# The documents, and the expected values computed from them


def iso_ms(ms):
    """RFC 3339 with milliseconds and `Z`, as Elasticsearch's default date format."""
    seconds, millis = divmod(ms, 1000)
    return (
        datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        + f".{millis:03d}Z"
    )


def parse_iso_ms(text):
    """Epoch milliseconds of an RFC 3339 / ISO 8601 string (any fractional digits)."""
    match = re.fullmatch(
        r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?(Z|[+-]\d{2}:?\d{2})?",
        text,
    )
    assert match, f"not an ISO 8601 date: {text!r}"
    year, month, day, hour, minute, second, frac, zone = match.groups()
    dt = datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
        tzinfo=timezone.utc,
    )
    ms = calendar.timegm(dt.utctimetuple()) * 1000 + int(((frac or "") + "000")[:3])
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        ms -= sign * (int(digits[:2]) * 60 + int(digits[2:])) * 60_000
    return ms


def generate_docs():
    rng = random.Random(20260105)
    services = [name for name, _ in SERVICES]
    service_weights = [weight for _, weight in SERVICES]
    severities = [name for name, _ in SEVERITIES]
    severity_weights = [weight for _, weight in SEVERITIES]
    docs = []
    for i in range(NUM_DOCS):
        pair = i // 2
        ts_ms = BASE_MS + pair * PAIR_SPACING_MS + (pair * 37) % 1000
        if pair >= GAP_AFTER_PAIR:
            ts_ms += GAP_MS
        severity = rng.choices(severities, severity_weights)[0]
        template = rng.choice(BODIES[severity])
        body = template.format(
            word=rng.choice(WORDS),
            key=f"k{rng.randrange(500)}",
            ms=rng.randrange(1, 5000),
            user=f"u{rng.randrange(1000)}",
            n=rng.randrange(100000),
        )
        doc = {
            "timestamp": iso_ms(ts_ms),
            "severity_text": severity,
            "service_name": rng.choices(services, service_weights)[0],
            "host": f"host-{rng.randrange(40):02d}",
            "trace_id": f"{rng.getrandbits(128):032x}",
            "body": body,
            "attributes": {
                "duration_ms": round(rng.lognormvariate(3.0, 1.2), 3),
                "status_code": rng.choice([200, 200, 200, 201, 404, 500, 503]),
            },
        }
        docs.append({"_id": f"evt-{i:05d}", "ts_ms": ts_ms, "doc": doc})
    assert len({d["doc"]["trace_id"] for d in docs}) == NUM_DOCS
    return docs


DOCS = generate_docs()
BY_TRACE = {d["doc"]["trace_id"]: d for d in DOCS}
TS_MIN = min(d["ts_ms"] for d in DOCS)
TS_MAX = max(d["ts_ms"] for d in DOCS)


def tokens(text):
    """What tantivy's `default` tokenizer makes of a text: lowercased alphanumeric runs."""
    return re.findall(r"[a-z0-9]+", text.lower())


def has_phrase(text, phrase):
    words, wanted = tokens(text), tokens(phrase)
    return any(words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1))


def matching(predicate):
    return [d for d in DOCS if predicate(d["doc"], d["ts_ms"])]


def count_of(predicate):
    return len(matching(predicate))


def floor_fixed(ms, interval_ms):
    return ms - ms % interval_ms


def calendar_floor(ms, unit):
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    if unit == "day":
        dt = dt.replace(hour=0, minute=0, second=0)
    elif unit == "hour":
        dt = dt.replace(minute=0, second=0)
    elif unit == "week":  # ISO weeks start on Monday
        dt = (dt - timedelta(days=dt.weekday())).replace(hour=0, minute=0, second=0)
    elif unit == "month":
        dt = dt.replace(day=1, hour=0, minute=0, second=0)
    elif unit == "year":
        dt = dt.replace(month=1, day=1, hour=0, minute=0, second=0)
    else:
        raise ValueError(unit)
    return calendar.timegm(dt.utctimetuple()) * 1000


def calendar_next(ms, unit):
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    if unit == "day":
        dt += timedelta(days=1)
    elif unit == "hour":
        dt += timedelta(hours=1)
    elif unit == "week":
        dt += timedelta(days=7)
    elif unit == "month":
        dt = dt.replace(year=dt.year + dt.month // 12, month=dt.month % 12 + 1)
    elif unit == "year":
        dt = dt.replace(year=dt.year + 1)
    return calendar.timegm(dt.utctimetuple()) * 1000


def expected_histogram(docs, floor, step, bounds=None, min_doc_count=0):
    """[(key, doc_count)] as Elasticsearch's date_histogram answers: with min_doc_count 0,
    every bucket from the first to the last (widened to extended_bounds)."""
    counts = Counter(floor(d["ts_ms"]) for d in docs)
    if min_doc_count > 0:
        return sorted((k, c) for k, c in counts.items() if c >= min_doc_count)
    keys = list(counts)
    if bounds:
        keys += [floor(bounds[0]), floor(bounds[1])]
    if not keys:
        return []
    buckets, key = [], min(keys)
    while key <= max(keys):
        buckets.append((key, counts.get(key, 0)))
        key = step(key)
    return buckets


def exact_percentile(sorted_values, percent):
    """Linear interpolation between closest ranks."""
    rank = percent / 100 * (len(sorted_values) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def close(actual, expected, rel=1e-9, abs_=1e-6):
    return actual is not None and math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_)


def show(value, limit=1500):
    text = json.dumps(value.body if hasattr(value, "body") else value, default=str)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


# --------------------------------------------------------------------------------------
# Quarry's native API (index creation is not part of the ES-compatible API)


def native(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{QUARRY_URL}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if API_KEY:
        request.add_header("Authorization", f"ApiKey {API_KEY}")
    try:
        with urllib.request.urlopen(request, timeout=30, context=SSL_CONTEXT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def index_config(index_id):
    return {
        "index_id": index_id,
        "doc_mapping": {
            "mode": "dynamic",
            "field_mappings": [
                {"name": "timestamp", "type": "datetime", "input_formats": ["rfc3339"],
                 "fast": True, "fast_precision": "milliseconds"},
                {"name": "severity_text", "type": "text", "tokenizer": "raw", "fast": True},
                {"name": "service_name", "type": "text", "tokenizer": "raw", "fast": True},
                {"name": "host", "type": "text", "tokenizer": "raw", "fast": True},
                {"name": "trace_id", "type": "text", "tokenizer": "raw", "fast": True},
                {"name": "body", "type": "text", "tokenizer": "default", "record": "position"},
                {"name": "attributes", "type": "object", "field_mappings": [
                    {"name": "duration_ms", "type": "f64", "fast": True},
                    {"name": "status_code", "type": "u64", "fast": True},
                ]},
            ],
            "timestamp_field": "timestamp",
            # Elasticsearch returns `_source` exactly as it was sent; Quarry does with this.
            "store_source": True,
        },
        "indexing_settings": {"commit_timeout_secs": 2},
        "search_settings": {"default_search_fields": ["body"]},
    }


# --------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def es():
    if not QUARRY_URL:
        pytest.exit("QUARRY_URL is not set (the node root, e.g. http://127.0.0.1:7280)", 2)
    client = Elasticsearch(
        f"{QUARRY_URL}/api/v1/_elastic", request_timeout=60, max_retries=0, api_key=API_KEY,
        ca_certs=CA_CERT,
    )
    yield client
    client.close()


def actions(docs, **extra):
    for d in docs:
        yield {"_index": INDEX, "_id": d["_id"], "_source": d["doc"], **extra}


@pytest.fixture(scope="module")
def loaded(es):
    """Creates the index natively, loads the documents with `helpers.bulk` in a shuffled
    order (refresh=true on the last request), and records what happened for the tests."""
    status, text = native("POST", "/api/v1/indexes", index_config(INDEX))
    if status != 200:
        pytest.exit(f"could not create index {INDEX}: {status} {text}", 2)
    order = list(DOCS)
    random.Random(7).shuffle(order)
    state = {}
    try:
        ok_first, errors_first = helpers.bulk(
            es, actions(order[:9000]), chunk_size=1000, raise_on_error=False
        )
        ok_last, errors_last = helpers.bulk(
            es, actions(order[9000:]), chunk_size=1000, raise_on_error=False, refresh=True
        )
        state["bulk"] = (ok_first + ok_last, errors_first + errors_last)
    except Exception as error:  # noqa: BLE001 - reported by test_bulk_helper
        state["bulk_exception"] = error
    state["count_after_refresh"] = es.count(index=INDEX)["count"]
    # The other tests need every document searchable, whatever `refresh` did.
    deadline = time.monotonic() + 30
    while es.count(index=INDEX)["count"] < NUM_DOCS and time.monotonic() < deadline:
        time.sleep(0.5)
    yield state
    if os.environ.get("QUARRY_ES_KEEP_INDEX") != "1":
        native("DELETE", f"/api/v1/indexes/{INDEX}")


def search(es, **kwargs):
    kwargs.setdefault("track_total_hits", True)
    return es.search(index=INDEX, **kwargs)


def total(response):
    hits_total = response["hits"]["total"]
    assert hits_total["relation"] == "eq", show(hits_total)
    return hits_total["value"]


# --------------------------------------------------------------------------------------
# Cluster information


def test_requests_without_the_api_key_are_refused():
    if not API_KEY:
        pytest.skip("the node runs without authentication")
    from elasticsearch import AuthenticationException

    anonymous = Elasticsearch(
        f"{QUARRY_URL}/api/v1/_elastic", request_timeout=60, max_retries=0, ca_certs=CA_CERT
    )
    with pytest.raises(AuthenticationException) as refused:
        anonymous.search(index="*", size=1)
    assert refused.value.meta.status == 401
    anonymous.close()


def test_info_reports_an_elasticsearch_8_version(es):
    info = es.info()
    assert re.fullmatch(r"8\.\d+\.\d+", info["version"]["number"]), show(info)
    assert isinstance(info["cluster_name"], str), show(info)
    assert info["tagline"] == "You Know, for Search", show(info)


def test_cluster_health(es):
    health = es.cluster.health()
    assert health["status"] in ("green", "yellow"), show(health)
    assert health["number_of_nodes"] >= 1, show(health)
    assert health["timed_out"] is False, show(health)


def test_es_index_creation_fails_cleanly_if_unsupported(es):
    # Quarry creates indexes through its native API. If the ES call is refused, it must be
    # refused in Elasticsearch's error shape; if it is ever supported, it must work.
    name = f"{INDEX}-es-created"
    try:
        es.indices.create(index=name)
    except elasticsearch.ApiError as error:
        assert 400 <= error.meta.status < 500, error
        assert isinstance(error.body["error"]["type"], str), error.body
    else:
        native("DELETE", f"/api/v1/indexes/{name}")


# --------------------------------------------------------------------------------------
# Ingest


def test_bulk_helper_reports_every_document(loaded):
    assert "bulk_exception" not in loaded, repr(loaded.get("bulk_exception"))
    successes, errors = loaded["bulk"]
    assert errors == [], show(errors[:5])
    assert successes == NUM_DOCS


def test_refresh_true_makes_every_document_searchable(loaded):
    assert loaded["count_after_refresh"] == NUM_DOCS


def test_hits_return_the_source_as_sent(es, loaded):
    for d in DOCS[::1999]:
        response = search(es, query={"term": {"trace_id": d["doc"]["trace_id"]}})
        assert total(response) == 1, show(response)
        hit = response["hits"]["hits"][0]
        assert hit["_index"] == INDEX, show(hit)
        assert hit["_source"] == d["doc"], show(hit)


def test_hits_carry_the_given_id(es, loaded):
    for d in DOCS[::1999]:
        response = search(es, query={"term": {"trace_id": d["doc"]["trace_id"]}})
        assert total(response) == 1, show(response)
        hit = response["hits"]["hits"][0]
        assert hit["_id"] == d["_id"], show(hit)


# --------------------------------------------------------------------------------------
# Count and query DSL


def test_count_without_query(es, loaded):
    assert es.count(index=INDEX)["count"] == NUM_DOCS


def test_count_with_query(es, loaded):
    response = es.count(index=INDEX, query={"term": {"severity_text": "ERROR"}})
    assert response["count"] == count_of(lambda doc, _: doc["severity_text"] == "ERROR")


DSL_CASES = {
    "match_all": ({"match_all": {}}, lambda doc, ts: True),
    "bool_filter_term_range_anchored_date_math": (
        {"bool": {"filter": [
            {"term": {"severity_text": "ERROR"}},
            # gte rounds down, lt rounds down: [2026-01-15T00:00, 2026-02-11T00:00)
            {"range": {"timestamp": {"gte": "2026-01-15T13:00:00Z||/d",
                                     "lt": "2026-02-10T05:00:00Z||+1d/d"}}},
        ]}},
        lambda doc, ts: doc["severity_text"] == "ERROR"
        and parse_iso_ms("2026-01-15T00:00:00Z") <= ts < parse_iso_ms("2026-02-11T00:00:00Z"),
    ),
    "range_lte_rounds_up_gt_rounds_up": (
        # gt rounds up: > 2026-01-20T23:59:59.999; lte rounds up: <= 2026-03-01T23:59:59.999
        {"range": {"timestamp": {"gt": "2026-01-20T08:00:00Z||/d", "lte": "2026-03-01T00:00:00Z||/d"}}},
        lambda doc, ts: parse_iso_ms("2026-01-21T00:00:00Z") <= ts < parse_iso_ms("2026-03-02T00:00:00Z"),
    ),
    "range_date_only": (
        # Elasticsearch's default date format, strict_date_optional_time, takes dates alone.
        {"range": {"timestamp": {"gte": "2026-01-15", "lt": "2026-01-18"}}},
        lambda doc, ts: parse_iso_ms("2026-01-15") <= ts < parse_iso_ms("2026-01-18"),
    ),
    "range_relative_to_now": (
        {"bool": {"filter": [
            {"range": {"timestamp": {"gte": "now-100y/d", "lt": "now+100y"}}},
            {"term": {"service_name": "auth"}},
        ]}},
        lambda doc, ts: doc["service_name"] == "auth",
    ),
    "range_numeric": (
        {"range": {"attributes.duration_ms": {"gte": 50, "lt": 200}}},
        lambda doc, ts: 50 <= doc["attributes"]["duration_ms"] < 200,
    ),
    "terms": (
        {"terms": {"service_name": ["auth", "search"]}},
        lambda doc, ts: doc["service_name"] in ("auth", "search"),
    ),
    "match_one_word": (
        {"match": {"body": "timeout"}},
        lambda doc, ts: "timeout" in tokens(doc["body"]),
    ),
    "match_words_or": (
        {"match": {"body": "declined exhausted"}},
        lambda doc, ts: bool({"declined", "exhausted"} & set(tokens(doc["body"]))),
    ),
    "match_words_and": (
        {"match": {"body": {"query": "reset peer", "operator": "and"}}},
        lambda doc, ts: {"reset", "peer"} <= set(tokens(doc["body"])),
    ),
    "match_phrase": (
        {"match_phrase": {"body": "connection reset by peer"}},
        lambda doc, ts: has_phrase(doc["body"], "connection reset by peer"),
    ),
    "query_string_fields_and": (
        {"query_string": {"query": "severity_text:ERROR AND service_name:payments"}},
        lambda doc, ts: doc["severity_text"] == "ERROR" and doc["service_name"] == "payments",
    ),
    "query_string_not": (
        {"query_string": {"query": "body:failed AND NOT severity_text:INFO"}},
        lambda doc, ts: "failed" in tokens(doc["body"]) and doc["severity_text"] != "INFO",
    ),
    "query_string_range_and_group": (
        {"query_string": {"query": "attributes.duration_ms:>=100 AND service_name:(auth OR search)"}},
        lambda doc, ts: doc["attributes"]["duration_ms"] >= 100
        and doc["service_name"] in ("auth", "search"),
    ),
    "query_string_default_field": (
        {"query_string": {"query": "timeout", "default_field": "body"}},
        lambda doc, ts: "timeout" in tokens(doc["body"]),
    ),
    "bool_must_should_must_not": (
        {"bool": {
            "must": [{"match": {"body": "timeout"}}],
            "must_not": [{"term": {"service_name": "auth"}}],
            "should": [{"term": {"severity_text": "WARN"}}, {"term": {"attributes.status_code": 500}}],
            "minimum_should_match": 1,
        }},
        lambda doc, ts: "timeout" in tokens(doc["body"])
        and doc["service_name"] != "auth"
        and (doc["severity_text"] == "WARN" or doc["attributes"]["status_code"] == 500),
    ),
}


@pytest.mark.parametrize("name", list(DSL_CASES))
def test_search_dsl_hit_counts(es, loaded, name):
    query, predicate = DSL_CASES[name]
    expected = count_of(predicate)
    assert expected > 0, "the generated data must exercise the query"
    response = search(es, query=query, size=5)
    assert total(response) == expected, show(response)
    hits = response["hits"]["hits"]
    assert len(hits) == min(5, expected), show(response)
    for hit in hits:
        d = BY_TRACE[hit["_source"]["trace_id"]]
        assert predicate(d["doc"], d["ts_ms"]), show(hit)


def test_search_from_size(es, loaded):
    query = {"term": {"service_name": "checkout"}}
    expected = count_of(lambda doc, _: doc["service_name"] == "checkout")
    response = search(es, query=query, from_=expected - 3, size=10)
    assert total(response) == expected, show(response)
    assert len(response["hits"]["hits"]) == 3, show(response)


# --------------------------------------------------------------------------------------
# Aggregations


def test_terms_aggregation_with_avg_sub_aggregation(es, loaded):
    response = search(es, size=0, aggs={"services": {
        "terms": {"field": "service_name", "size": 20},
        "aggs": {"avg_duration": {"avg": {"field": "attributes.duration_ms"}}},
    }})
    assert response["hits"]["hits"] == [], show(response)
    agg = response["aggregations"]["services"]
    expected = Counter(d["doc"]["service_name"] for d in DOCS)
    got = {b["key"]: b["doc_count"] for b in agg["buckets"]}
    assert got == dict(expected), show(agg)
    counts = [b["doc_count"] for b in agg["buckets"]]
    assert counts == sorted(counts, reverse=True), show(agg)
    assert agg["sum_other_doc_count"] == 0, show(agg)
    assert agg["doc_count_error_upper_bound"] == 0, show(agg)
    for bucket in agg["buckets"]:
        durations = [d["doc"]["attributes"]["duration_ms"] for d in DOCS
                     if d["doc"]["service_name"] == bucket["key"]]
        assert close(bucket["avg_duration"]["value"], sum(durations) / len(durations)), show(bucket)


def test_terms_aggregation_size_limits_buckets(es, loaded):
    response = search(es, size=0, aggs={"services": {"terms": {"field": "service_name", "size": 3}}})
    agg = response["aggregations"]["services"]
    expected = Counter(d["doc"]["service_name"] for d in DOCS).most_common()
    assert [(b["key"], b["doc_count"]) for b in agg["buckets"]] == expected[:3], show(agg)
    assert agg["sum_other_doc_count"] == sum(c for _, c in expected[3:]), show(agg)


def check_date_buckets(agg, expected):
    got = [(b["key"], b["doc_count"]) for b in agg["buckets"]]
    assert got == expected, f"got {len(got)} buckets, expected {len(expected)}; " + show(agg, 3000)
    for bucket in agg["buckets"]:
        assert isinstance(bucket["key"], int), show(bucket)
        assert parse_iso_ms(bucket["key_as_string"]) == bucket["key"], show(bucket)


def test_date_histogram_fixed_interval_extended_bounds(es, loaded):
    bounds = (TS_MIN - 3 * DAY_MS - 12345, TS_MAX + 2 * DAY_MS + 999)
    response = search(es, size=0, aggs={"per_day": {"date_histogram": {
        "field": "timestamp", "fixed_interval": "1d", "min_doc_count": 0,
        "extended_bounds": {"min": bounds[0], "max": bounds[1]},
    }}})
    expected = expected_histogram(
        DOCS, lambda ms: floor_fixed(ms, DAY_MS), lambda ms: ms + DAY_MS, bounds
    )
    assert any(c == 0 for _, c in expected)
    check_date_buckets(response["aggregations"]["per_day"], expected)


def test_date_histogram_fixed_interval_default_min_doc_count(es, loaded):
    # Elasticsearch's default min_doc_count is 0: empty buckets inside the data's range.
    query = {"term": {"severity_text": "ERROR"}}
    response = search(es, size=0, query=query, aggs={"per_12h": {"date_histogram": {
        "field": "timestamp", "fixed_interval": "12h",
    }}})
    docs = matching(lambda doc, _: doc["severity_text"] == "ERROR")
    expected = expected_histogram(
        docs, lambda ms: floor_fixed(ms, 12 * HOUR_MS), lambda ms: ms + 12 * HOUR_MS
    )
    check_date_buckets(response["aggregations"]["per_12h"], expected)


def test_date_histogram_fixed_interval_min_doc_count_1(es, loaded):
    response = search(es, size=0, aggs={"per_6h": {"date_histogram": {
        "field": "timestamp", "fixed_interval": "6h", "min_doc_count": 1,
    }}})
    expected = expected_histogram(
        DOCS, lambda ms: floor_fixed(ms, 6 * HOUR_MS), None, min_doc_count=1
    )
    check_date_buckets(response["aggregations"]["per_6h"], expected)


CALENDAR_CASES = {
    "1h": ("hour", None),
    "day": ("day", ("2026-01-01T00:00:00Z", "2026-04-10T00:00:00Z")),
    "1d": ("day", None),
    "week": ("week", ("2025-12-20T00:00:00Z", "2026-04-30T00:00:00Z")),
    "1w": ("week", None),
    "month": ("month", ("2025-11-15T00:00:00Z", "2026-06-01T00:00:00Z")),
    "1M": ("month", None),
    "year": ("year", ("2025-06-01T00:00:00Z", "2026-12-31T00:00:00Z")),
    "1y": ("year", None),
}


@pytest.mark.parametrize("interval", list(CALENDAR_CASES))
def test_date_histogram_calendar_interval(es, loaded, interval):
    unit, bounds = CALENDAR_CASES[interval]
    spec = {"field": "timestamp", "calendar_interval": interval, "min_doc_count": 0}
    query = {"match_all": {}}
    docs = DOCS
    if unit == "hour":  # a few days only, to keep the response small
        window = ("2026-02-01T00:00:00Z", "2026-02-04T00:00:00Z")
        query = {"range": {"timestamp": {"gte": window[0], "lt": window[1]}}}
        docs = matching(lambda doc, ts: parse_iso_ms(window[0]) <= ts < parse_iso_ms(window[1]))
    if bounds:
        spec["extended_bounds"] = {"min": bounds[0], "max": bounds[1]}
    response = search(es, size=0, query=query, aggs={"h": {"date_histogram": spec}})
    expected = expected_histogram(
        docs,
        lambda ms: calendar_floor(ms, unit),
        lambda ms: calendar_next(ms, unit),
        tuple(parse_iso_ms(b) for b in bounds) if bounds else None,
    )
    check_date_buckets(response["aggregations"]["h"], expected)


def test_date_histogram_time_zone(es, loaded):
    # Buckets start at local midnight; keys are epoch ms, key_as_string carries the offset.
    offset_ms = 2 * HOUR_MS
    window = ("2026-01-05T00:00:00Z", "2026-01-09T00:00:00Z")
    query = {"range": {"timestamp": {"gte": window[0], "lt": window[1]}}}
    docs = matching(lambda doc, ts: parse_iso_ms(window[0]) <= ts < parse_iso_ms(window[1]))
    for spec in ({"calendar_interval": "1d"}, {"fixed_interval": "1d"}):
        response = search(es, size=0, query=query, aggs={"h": {"date_histogram": {
            "field": "timestamp", "time_zone": "+02:00", **spec,
        }}})
        expected = expected_histogram(
            docs,
            lambda ms: floor_fixed(ms + offset_ms, DAY_MS) - offset_ms,
            lambda ms: ms + DAY_MS,
        )
        check_date_buckets(response["aggregations"]["h"], expected)


def test_metric_aggregations(es, loaded):
    query = {"terms": {"service_name": ["payments", "checkout"]}}
    durations = [d["doc"]["attributes"]["duration_ms"] for d in DOCS
                 if d["doc"]["service_name"] in ("payments", "checkout")]
    field = {"field": "attributes.duration_ms"}
    response = search(es, size=0, query=query, aggs={
        "avg": {"avg": field}, "max": {"max": field}, "min": {"min": field},
        "sum": {"sum": field}, "stats": {"stats": field},
    })
    aggs = response["aggregations"]
    assert close(aggs["avg"]["value"], sum(durations) / len(durations)), show(aggs)
    assert close(aggs["max"]["value"], max(durations)), show(aggs)
    assert close(aggs["min"]["value"], min(durations)), show(aggs)
    assert close(aggs["sum"]["value"], sum(durations)), show(aggs)
    stats = aggs["stats"]
    assert stats["count"] == len(durations), show(stats)
    assert close(stats["sum"], sum(durations)) and close(stats["max"], max(durations)), show(stats)


def test_percentiles_aggregation(es, loaded):
    durations = sorted(d["doc"]["attributes"]["duration_ms"] for d in DOCS)
    response = search(es, size=0, aggs={"p": {"percentiles": {
        "field": "attributes.duration_ms", "percents": [50, 95, 99],
    }}})
    values = response["aggregations"]["p"]["values"]
    assert set(values) == {"50.0", "95.0", "99.0"}, show(values)
    for percent in (50, 95, 99):
        expected = exact_percentile(durations, percent)
        # Elasticsearch (t-digest) and tantivy (DDSketch) are approximate.
        assert close(values[f"{percent}.0"], expected, rel=0.03), (percent, expected, show(values))


def test_cardinality_aggregation(es, loaded):
    response = search(es, size=0, aggs={
        "services": {"cardinality": {"field": "service_name"}},
        "hosts": {"cardinality": {"field": "host"}},
        "traces": {"cardinality": {"field": "trace_id"}},
    })
    aggs = response["aggregations"]
    assert aggs["services"]["value"] == len({d["doc"]["service_name"] for d in DOCS}), show(aggs)
    assert aggs["hosts"]["value"] == len({d["doc"]["host"] for d in DOCS}), show(aggs)
    # Approximate (HyperLogLog) above a few thousand values.
    assert close(aggs["traces"]["value"], NUM_DOCS, rel=0.05), show(aggs)


# --------------------------------------------------------------------------------------
# msearch, field_caps, mapping


def test_msearch(es, loaded):
    response = es.msearch(searches=[
        {"index": INDEX},
        {"query": {"term": {"severity_text": "ERROR"}}, "size": 0, "track_total_hits": True},
        {"index": INDEX},
        {"query": {"match_phrase": {"body": "connection reset by peer"}}, "size": 3,
         "track_total_hits": True},
    ])
    first, second = response["responses"]
    assert first["status"] == 200 and second["status"] == 200, show(response)
    assert first["hits"]["total"]["value"] == count_of(
        lambda doc, _: doc["severity_text"] == "ERROR"), show(first)
    assert first["hits"]["hits"] == [], show(first)
    assert second["hits"]["total"]["value"] == count_of(
        lambda doc, _: has_phrase(doc["body"], "connection reset by peer")), show(second)
    assert len(second["hits"]["hits"]) == 3, show(second)


def test_msearch_with_default_index_and_error_item(es, loaded):
    response = es.msearch(index=INDEX, searches=[
        {}, {"query": {"term": {"service_name": "auth"}}, "size": 0, "track_total_hits": True},
        {"index": f"{INDEX}-missing"}, {"query": {"match_all": {}}},
    ])
    found, missing = response["responses"]
    assert found["hits"]["total"]["value"] == count_of(
        lambda doc, _: doc["service_name"] == "auth"), show(found)
    assert missing["status"] == 404, show(missing)
    assert missing["error"]["type"] == "index_not_found_exception", show(missing)


def test_field_caps(es, loaded):
    response = es.field_caps(index=INDEX, fields="*")
    assert response["indices"] == [INDEX], show(response)
    fields = response["fields"]
    expected = {
        "timestamp": ({"date", "date_nanos"}, True, True),
        "severity_text": ({"keyword"}, True, True),
        "service_name": ({"keyword"}, True, True),
        "body": ({"text"}, True, False),
        "attributes.duration_ms": ({"double"}, True, True),
        "attributes.status_code": ({"long", "unsigned_long"}, True, True),
    }
    for name, (types, searchable, aggregatable) in expected.items():
        assert name in fields, f"{name} missing: {show(fields)}"
        assert len(fields[name]) == 1 and set(fields[name]) <= types, show(fields[name])
        (es_type, caps), = fields[name].items()
        assert caps["type"] == es_type, show(caps)
        assert caps["searchable"] is searchable, (name, show(caps))
        assert caps["aggregatable"] is aggregatable, (name, show(caps))


def test_field_caps_pattern(es, loaded):
    response = es.field_caps(index=INDEX, fields="service*,attributes.*")
    assert set(response["fields"]) == {
        "service_name", "attributes.duration_ms", "attributes.status_code"
    }, show(response)


def test_get_mapping(es, loaded):
    response = es.indices.get_mapping(index=INDEX)
    properties = response[INDEX]["mappings"]["properties"]
    assert properties["timestamp"]["type"] in ("date", "date_nanos"), show(properties)
    assert properties["body"]["type"] == "text", show(properties)
    assert properties["service_name"]["type"] == "keyword", show(properties)
    assert properties["attributes"]["properties"]["duration_ms"]["type"] == "double", show(properties)


# --------------------------------------------------------------------------------------
# Reading every hit: search_after, scroll, helpers.scan


def check_each_once(hits, expected_docs):
    """Every expected document exactly once, by content first, then by `_id`."""
    traces = [hit["_source"]["trace_id"] for hit in hits]
    duplicates = [t for t, c in Counter(traces).items() if c > 1]
    assert not duplicates, f"{len(duplicates)} documents seen more than once"
    assert set(traces) == {d["doc"]["trace_id"] for d in expected_docs}, (
        f"saw {len(traces)} documents, expected {len(expected_docs)}"
    )
    ids = Counter(hit["_id"] for hit in hits)
    assert len(ids) == len(hits), "an `_id` is repeated"
    assert set(ids) == {d["_id"] for d in expected_docs}, (
        "hits do not carry the `_id`s given at indexing: e.g. "
        + show(sorted(ids)[:3]) + " instead of " + show(sorted(d["_id"] for d in expected_docs)[:3])
    )


@pytest.mark.parametrize("sort", [
    [{"timestamp": "desc"}],
    [{"timestamp": {"order": "asc"}}, "_doc"],
], ids=["timestamp_desc", "timestamp_asc_doc"])
def test_search_after_pagination(es, loaded, sort):
    query = {"terms": {"severity_text": ["INFO", "WARN"]}}
    expected_docs = matching(lambda doc, _: doc["severity_text"] in ("INFO", "WARN"))
    descending = "desc" in json.dumps(sort)
    hits, after, pages = [], None, 0
    while pages <= len(expected_docs) // 1000 + 2:
        kwargs = {"search_after": after} if after is not None else {}
        response = search(es, query=query, sort=sort, size=1000, **kwargs)
        assert total(response) == len(expected_docs), show(response)
        page = response["hits"]["hits"]
        pages += 1
        if not page:
            break
        hits.extend(page)
        after = page[-1]["sort"]
    times = [parse_iso_ms(hit["_source"]["timestamp"]) for hit in hits]
    assert times == sorted(times, reverse=descending), "hits out of order"
    check_each_once(hits, expected_docs)


def test_scroll(es, loaded):
    query = {"term": {"severity_text": "WARN"}}
    expected_docs = matching(lambda doc, _: doc["severity_text"] == "WARN")
    response = search(es, query=query, scroll="1m", size=500)
    assert "_scroll_id" in response, "no `_scroll_id` in: " + show(response, 600)
    assert total(response) == len(expected_docs), show(response)
    hits = list(response["hits"]["hits"])
    scroll_ids = {response["_scroll_id"]}
    scroll_id = response["_scroll_id"]
    for _ in range(len(expected_docs) // 500 + 3):
        response = es.scroll(scroll_id=scroll_id, scroll="1m")
        assert total(response) == len(expected_docs), show(response)
        if not response["hits"]["hits"]:
            break
        hits.extend(response["hits"]["hits"])
        scroll_id = response["_scroll_id"]
        scroll_ids.add(scroll_id)
    else:
        pytest.fail("the scroll never ended")
    check_each_once(hits, expected_docs)
    cleared = es.clear_scroll(scroll_id=sorted(scroll_ids))
    assert cleared["succeeded"] is True, show(cleared)
    assert isinstance(cleared["num_freed"], int), show(cleared)


def test_helpers_scan(es, loaded):
    hits = list(helpers.scan(es, index=INDEX, query={"query": {"match_all": {}}},
                             size=1000, scroll="1m"))
    check_each_once(hits, DOCS)


# --------------------------------------------------------------------------------------
# `fields` with date formats


def test_fields_with_date_formats(es, loaded):
    d = DOCS[4321]
    response = search(es, query={"term": {"trace_id": d["doc"]["trace_id"]}}, fields=[
        "service_name",
        "timestamp",
        {"field": "attributes.duration_ms"},
    ])
    hit = response["hits"]["hits"][0]
    fields = hit["fields"]
    assert fields["service_name"] == [d["doc"]["service_name"]], show(hit)
    assert fields["attributes.duration_ms"] == [d["doc"]["attributes"]["duration_ms"]], show(hit)
    assert len(fields["timestamp"]) == 1 and parse_iso_ms(fields["timestamp"][0]) == d["ts_ms"], show(hit)

    for fmt, expected in [
        ("epoch_millis", str(d["ts_ms"])),
        ("yyyy-MM-dd", iso_ms(d["ts_ms"])[:10]),
        ("strict_date_optional_time", iso_ms(d["ts_ms"])),
    ]:
        for key in ("fields", "docvalue_fields"):
            response = search(es, query={"term": {"trace_id": d["doc"]["trace_id"]}},
                              **{key: [{"field": "timestamp", "format": fmt}]})
            hit = response["hits"]["hits"][0]
            got = hit.get("fields", {}).get("timestamp")
            assert got == [expected], f"{key} format {fmt}: expected [{expected!r}], " + show(hit)


# --------------------------------------------------------------------------------------
# What clients send besides the request itself


def test_gzip_request_bodies(loaded):
    # `http_compress=True` gzips request bodies (Content-Encoding: gzip).
    client = Elasticsearch(f"{QUARRY_URL}/api/v1/_elastic", request_timeout=60, max_retries=0,
                           http_compress=True, api_key=API_KEY, ca_certs=CA_CERT)
    query = {"term": {"severity_text": "ERROR"}}
    expected = count_of(lambda doc, _: doc["severity_text"] == "ERROR")
    try:
        assert total(client.search(index=INDEX, query=query, size=0, track_total_hits=True)) == expected
        assert client.count(index=INDEX, query=query)["count"] == expected
        response = client.msearch(index=INDEX, searches=[{}, {"query": query, "size": 0}])
        assert response["responses"][0]["hits"]["total"]["value"] == expected, show(response)
    finally:
        client.close()


def test_common_client_parameters_are_accepted(es, loaded):
    # Parameters clients and integrations commonly add must not be refused.
    response = es.search(
        index=INDEX, size=1, filter_path="took,hits.total,hits.hits._id,aggregations",
        typed_keys=True, request_cache=True, preference="_local", timeout="30s",
        search_type="query_then_fetch", allow_partial_search_results=True,
        ignore_unavailable=True, track_total_hits=True,
        aggs={"services": {"terms": {"field": "service_name"}}},
    )
    assert response["hits"]["total"]["value"] == NUM_DOCS, show(response)
    assert es.cluster.health(wait_for_status="yellow", timeout="5s")["status"] in ("green", "yellow")


# --------------------------------------------------------------------------------------
# Errors, in Elasticsearch's shapes and with the client's exception classes


def check_error_body(error, status):
    assert error.meta.status == status, error
    body = error.body
    assert body["status"] == status, show(body)
    assert isinstance(body["error"]["type"], str) and body["error"]["type"], show(body)
    assert isinstance(body["error"]["reason"], str), show(body)
    assert isinstance(body["error"]["root_cause"], list), show(body)


@pytest.mark.parametrize("query", [
    {"no_such_query": {"field": "value"}},
    {"query_string": {"query": "body:(unclosed"}},
    {"range": {"timestamp": {"gte": "not a date"}}},
], ids=["unknown_query_type", "unparsable_query_string", "bad_date"])
def test_malformed_query_is_bad_request(es, loaded, query):
    with pytest.raises(BadRequestError) as raised:
        es.search(index=INDEX, query=query)
    check_error_body(raised.value, 400)


def test_unknown_index_is_not_found(es, loaded):
    missing = f"{INDEX}-missing"
    for call in (
        lambda: es.search(index=missing, query={"match_all": {}}),
        lambda: es.count(index=missing),
        lambda: es.indices.get_mapping(index=missing),
        lambda: es.field_caps(index=missing, fields="*"),
    ):
        with pytest.raises(NotFoundError) as raised:
            call()
        check_error_body(raised.value, 404)
        assert raised.value.error == "index_not_found_exception", show(raised.value.body)


# --------------------------------------------------------------------------------------
# `_id` idempotence. Last, since a failure changes the index's content.


def test_resent_ids_are_acknowledged_but_not_indexed_again(es, loaded):
    resent = DOCS[:100]
    items = list(helpers.streaming_bulk(
        es, actions(resent), chunk_size=100, raise_on_error=False, refresh="wait_for",
    ))
    assert len(items) == 100
    for ok, item in items:
        (action, result), = item.items()
        assert ok and result["status"] == 200, show(item)
        assert result["result"] in ("noop", "updated"), show(item)
        assert result["_id"] in {d["_id"] for d in resent}, show(item)
    assert es.count(index=INDEX)["count"] == NUM_DOCS
    # Nothing indexed later either (commit_timeout_secs is 2).
    time.sleep(3)
    assert es.count(index=INDEX)["count"] == NUM_DOCS
    for d in resent[:3]:
        response = search(es, query={"term": {"trace_id": d["doc"]["trace_id"]}})
        assert total(response) == 1, show(response)
        assert response["hits"]["hits"][0]["_id"] == d["_id"], show(response)
