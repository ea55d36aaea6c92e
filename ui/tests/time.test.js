import { test } from "node:test";
import assert from "node:assert/strict";
import { bucketInterval, intervalLabel, resolveTime, timestampMs } from "../js/lib/time.js";

const NOW = Date.UTC(2026, 11, 2, 12, 0, 0);

test("relative and absolute times resolve against now", () => {
  assert.equal(resolveTime("now", NOW), NOW);
  assert.equal(resolveTime("now-15m", NOW), NOW - 15 * 60_000);
  assert.equal(resolveTime("now-7d", NOW), NOW - 7 * 86_400_000);
  assert.equal(resolveTime("1764676800000", NOW), 1764676800000);
  assert.equal(resolveTime("2026-12-02T11:00:00Z", NOW), NOW - 3_600_000);
  assert.throws(() => resolveTime("yesterday", NOW), /not a time/);
});

test("bucket size keeps a range within 80 nice buckets", () => {
  assert.equal(bucketInterval(15 * 60_000), 15_000);
  assert.equal(bucketInterval(3_600_000), 60_000);
  assert.equal(bucketInterval(24 * 3_600_000), 30 * 60_000);
  assert.equal(bucketInterval(7 * 86_400_000), 3 * 3_600_000);
  assert.equal(bucketInterval(10_000), 1000, "never below the API's one-second precision");
  assert.equal(bucketInterval(100 * 365 * 86_400_000), 30 * 86_400_000);
  for (const range of [60_000, 3_600_000, 86_400_000, 30 * 86_400_000]) {
    assert.ok(range / bucketInterval(range) <= 80);
  }
});

test("intervals read as date_histogram units", () => {
  assert.equal(intervalLabel(15_000), "15s");
  assert.equal(intervalLabel(300_000), "5m");
  assert.equal(intervalLabel(3 * 3_600_000), "3h");
  assert.equal(intervalLabel(86_400_000), "1d");
});

test("hit timestamps of every precision become milliseconds", () => {
  const ms = 1_668_422_437_218;
  assert.equal(timestampMs("2022-11-14T10:40:37.218Z"), ms);
  assert.equal(timestampMs(ms), ms);
  assert.equal(timestampMs(ms / 1000), ms);
  assert.equal(timestampMs(ms * 1000), ms);
  assert.equal(timestampMs(ms * 1_000_000), ms);
  assert.ok(Number.isNaN(timestampMs(undefined)));
});
