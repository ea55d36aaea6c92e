import { test } from "node:test";
import assert from "node:assert/strict";
import { addClause, clauseFor, quoteValue } from "../js/lib/query_edit.js";

test("plain values stay bare, others are quoted and escaped", () => {
  assert.equal(quoteValue("ERROR"), "ERROR");
  assert.equal(quoteValue(500), "500");
  assert.equal(quoteValue("connection reset"), '"connection reset"');
  assert.equal(quoteValue('say "hi" \\ now'), '"say \\"hi\\" \\\\ now"');
  assert.equal(quoteValue("OR"), '"OR"');
  assert.equal(quoteValue("-1"), '"-1"');
  assert.equal(quoteValue("a*"), '"a*"');
  assert.equal(quoteValue(""), '""');
});

test("field names with special characters are escaped", () => {
  assert.equal(clauseFor("attributes.http.status_code", 500), "attributes.http.status_code:500");
  assert.equal(clauseFor("weird:name", "x"), "weird\\:name:x");
  assert.equal(clauseFor("level", "INFO", true), "NOT level:INFO");
});

test("a sidebar value narrows the query", () => {
  assert.equal(addClause("", "level", "ERROR"), "level:ERROR");
  assert.equal(addClause("*", "level", "ERROR"), "level:ERROR");
  assert.equal(addClause("body:failed", "level", "ERROR"), "body:failed AND level:ERROR");
  assert.equal(addClause("a OR b", "level", "ERROR"), "(a OR b) AND level:ERROR");
  assert.equal(addClause("body:failed", "level", "INFO", true), "body:failed AND NOT level:INFO");
});

test("the same value twice does nothing; its opposite replaces it", () => {
  assert.equal(addClause("body:failed AND level:ERROR", "level", "ERROR"), "body:failed AND level:ERROR");
  assert.equal(addClause("body:failed AND level:ERROR", "level", "ERROR", true), "body:failed AND NOT level:ERROR");
  assert.equal(addClause("NOT level:ERROR", "level", "ERROR"), "level:ERROR");
});
