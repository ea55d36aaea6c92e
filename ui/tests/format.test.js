import { test } from "node:test";
import assert from "node:assert/strict";
import {
  escapeHtml, fieldValue, formatBytes, pickBodyField, pickSeverityField, severityClass, snippetToHtml,
} from "../js/lib/format.js";
import { matchingIndexes } from "../js/lib/index_pattern.js";
import { stackBuckets, volumeAggregation, OTHER_SERIES } from "../js/lib/histogram_data.js";
import { toYaml } from "../js/lib/yaml.js";
import { errorMessage, syntaxErrorPosition } from "../js/api.js";

test("snippets keep their marks and nothing else of HTML", () => {
  assert.equal(snippetToHtml("a <b>failed</b> <script>x</script>"),
    "a <mark>failed</mark> &lt;script&gt;x&lt;/script&gt;");
  assert.equal(escapeHtml(`<"'&>`), "&lt;&quot;&#39;&amp;&gt;");
});

test("severities of the usual schemes get a colour", () => {
  assert.equal(severityClass("ERROR"), "sev-error");
  assert.equal(severityClass("warn"), "sev-warn");
  assert.equal(severityClass("Information"), "sev-info");
  assert.equal(severityClass("FATAL"), "sev-fatal");
  assert.equal(severityClass(undefined), "sev-other");
});

test("the severity and body fields are found by their usual names", () => {
  assert.equal(pickSeverityField(["timestamp", "severity_text", "body"]), "severity_text");
  assert.equal(pickSeverityField(["Level", "msg"]), "Level");
  assert.equal(pickSeverityField(["body"]), null);
  assert.equal(pickBodyField(["body", "message"], ["message"]), "message");
  assert.equal(pickBodyField(["timestamp", "msg"], []), "msg");
  assert.equal(pickBodyField(["body", "severity_text"], ["body.message"]), "body.message");
});

test("dotted paths reach into nested and flat documents", () => {
  const doc = { "attributes": { "http": { "status_code": 500 } }, "resource.service": "api" };
  assert.equal(fieldValue(doc, "attributes.http.status_code"), 500);
  assert.equal(fieldValue(doc, "resource.service"), "api");
  assert.equal(fieldValue(doc, "missing.path"), undefined);
});

test("sizes are in powers of 1000", () => {
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(1_500_000), "1.50 MB");
  assert.equal(formatBytes(25_000_000_000), "25.0 GB");
});

test("patterns and comma lists select indexes as the search API does", () => {
  const ids = ["demo-logs", "team-a-logs", "team-ab-logs", "otel-logs-v0_9"];
  assert.deepEqual(matchingIndexes("team-a-*", ids), ["team-a-logs"]);
  assert.deepEqual(matchingIndexes("team-*,-team-ab-*", ids), ["team-a-logs"]);
  assert.deepEqual(matchingIndexes("demo-logs, otel-*", ids), ["demo-logs", "otel-logs-v0_9"]);
  assert.deepEqual(matchingIndexes("_all", ids), ids);
});

test("histogram buckets stack by severity, the rest as other", () => {
  const aggregation = volumeAggregation("ts", "level", 60_000, 0, 600_000);
  assert.equal(aggregation.volume.date_histogram.fixed_interval, "60s");
  assert.deepEqual(aggregation.volume.date_histogram.extended_bounds, { min: 0, max: 599_999 });
  assert.ok(aggregation.volume.aggs.severity.terms);
  assert.equal(volumeAggregation("ts", null, 1000, 0, 10).volume.aggs, undefined);
  const { buckets, series } = stackBuckets({
    volume: {
      buckets: [
        { key: 0, doc_count: 10, severity: { buckets: [{ key: "INFO", doc_count: 7 }, { key: "ERROR", doc_count: 2 }] } },
        { key: 60_000, doc_count: 3, severity: { buckets: [{ key: "ERROR", doc_count: 3 }] } },
      ],
    },
  }, 60_000);
  assert.deepEqual(series, ["INFO", "ERROR", OTHER_SERIES]);
  assert.deepEqual(buckets[0], { start: 0, end: 60_000, total: 10, counts: { INFO: 7, ERROR: 2, [OTHER_SERIES]: 1 } });
  assert.deepEqual(buckets[1].counts, { ERROR: 3 });
  assert.deepEqual(stackBuckets(undefined, 1000), { buckets: [], series: [] });
});

test("configs read as YAML", () => {
  const yaml = toYaml({
    version: "0.9",
    index_id: "demo-logs",
    doc_mapping: { field_mappings: [{ name: "ts", type: "datetime", fast: true }], tag_fields: [] },
    retention: null,
    note: "a: b",
  });
  assert.equal(yaml, [
    'version: "0.9"',
    "index_id: demo-logs",
    "doc_mapping:",
    "  field_mappings:",
    "    - name: ts",
    "      type: datetime",
    "      fast: true",
    "  tag_fields: []",
    "retention: null",
    'note: "a: b"',
    "",
  ].join("\n"));
});

test("API errors become messages, syntax errors a position", () => {
  assert.equal(errorMessage({ error: "no such index" }, 404), "no such index");
  assert.equal(errorMessage({ error: { type: "x", reason: "bad" } }, 400), "bad");
  assert.equal(errorMessage(null, 502), "the node answered HTTP 502");
  assert.equal(syntaxErrorPosition("query syntax error at position 4: unexpected `)`", "a b ) c"), 4);
  // The API counts characters; the page counts UTF-16 units.
  assert.equal(syntaxErrorPosition("query syntax error at position 2: x", "😀a)"), 3);
  assert.equal(syntaxErrorPosition("no such field", "a"), null);
});
