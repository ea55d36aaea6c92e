import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_STATE, stateFromSearch, stateToSearch } from "../js/lib/url_state.js";

test("a state survives the URL", () => {
  const states = [
    { ...DEFAULT_STATE },
    { index: "logs-*,-logs-old", query: 'body:"connection reset" AND NOT level:INFO', from: "now-1h", to: "now", live: true },
    { index: "demo-logs", query: "a&b=c?d#e", from: "1764676800000", to: "1764680400000", live: false },
  ];
  for (const state of states) {
    assert.deepEqual(stateFromSearch(stateToSearch(state)), state);
  }
});

test("defaults are left out of the URL", () => {
  assert.equal(stateToSearch(DEFAULT_STATE), "");
  assert.equal(stateToSearch({ ...DEFAULT_STATE, index: "demo-logs" }), "?index=demo-logs");
});

test("a URL with nothing or junk gives the defaults", () => {
  assert.deepEqual(stateFromSearch(""), { ...DEFAULT_STATE });
  assert.deepEqual(stateFromSearch("?live=yes&from="), { ...DEFAULT_STATE });
});
