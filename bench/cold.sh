#!/usr/bin/env bash
# Cold searches: the first query on a split nothing of which is in memory, behind storage
# that answers every GET LATENCY_MS late (searcher.simulated_get_latency_ms; S3 answers in
# 20-50 ms). For each query, the node is restarted, the split opened by a query that reads
# nothing of it, and the query timed with the storage GETs and round trips /metrics counted
# for it; then the same with the warmup off (searcher.warmup: false), and warm.
#
#   bench/cold.sh [NUM_DOCS] [LATENCY_MS]      (default 1000000 20)
set -euo pipefail
cd "$(dirname "$0")/.."
NUM_DOCS=${1:-1000000}
LATENCY_MS=${2:-20}
WORK=$(mktemp -d)
PORT=${QUARRY_BENCH_PORT:-7484}
ENDPOINT=http://127.0.0.1:$PORT
NODE_PID=
trap 'kill "$NODE_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet
BIN=target/release/quarry
"$BIN" generate-logs --docs "$NUM_DOCS" --seed 42 > "$WORK/logs.ndjson"

start_node() {
  printf 'rest:\n  listen_port: %s\ndata_dir: %s/qdata\nsearcher:\n  partial_result_cache_entries: 0\n  simulated_get_latency_ms: %s\n  warmup: %s\n' \
    "$PORT" "$WORK" "$LATENCY_MS" "$1" > "$WORK/node.yaml"
  "$BIN" run --config "$WORK/node.yaml" >> "$WORK/node.log" 2>&1 &
  NODE_PID=$!
  for _ in $(seq 1 300); do curl -sf "$ENDPOINT/health/readyz" >/dev/null && return; sleep 0.1; done
  echo "node not ready" >&2; exit 1
}
stop_node() {
  kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
}
search_ms() {
  curl -sf -o /dev/null -w '%{time_total}' -X POST "$ENDPOINT/api/v1/bench-logs/search" \
    -H 'content-type: application/json' -d "$1" | awk '{printf "%.1f", $1 * 1000}'
}
metric() {
  curl -sf "$ENDPOINT/metrics" | awk -v name="quarry_$1" '$1 == name {print $2}'
}

start_node true
"$BIN" index create --endpoint "$ENDPOINT" --index-config bench/bench-logs.yaml >/dev/null
"$BIN" ingest --endpoint "$ENDPOINT" --index bench-logs --input-path "$WORK/logs.ndjson" >/dev/null 2>&1
TRACE_ID=$(curl -sf -X POST "$ENDPOINT/api/v1/bench-logs/search" -H 'content-type: application/json' \
  -d '{"query": "trace_id:*", "max_hits": 1}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["hits"][0]["trace_id"])')
stop_node

QUERIES=(
  'body:failed, top 20 by time|{"query": "body:failed", "max_hits": 20}'
  'phrase "connection reset by peer"|{"query": "body:\"connection reset by peer\"", "max_hits": 20}'
  'one trace_id|{"query": "trace_id:'"$TRACE_ID"'", "max_hits": 20}'
  'ERROR AND payments|{"query": "severity_text:ERROR AND service_name:payments", "max_hits": 20}'
  'date_histogram 60s by severity|{"query": "*", "max_hits": 0, "aggs": {"h": {"date_histogram": {"field": "timestamp", "fixed_interval": "60s"}, "aggs": {"s": {"terms": {"field": "severity_text"}}}}}}'
)
# A host no document has: the split is opened (its footer fetched) and nothing else read.
OPEN='{"query": "host:none-such", "max_hits": 0}'

echo "$NUM_DOCS documents, ${LATENCY_MS} ms added to every GET; first query after the split is opened"
printf '%-34s %10s %6s %12s %10s %6s %10s\n' query warmup GETs "round trips" "no warmup" GETs warm
for entry in "${QUERIES[@]}"; do
  name=${entry%%|*}
  query=${entry#*|}
  row=()
  for warmup in true false; do
    start_node "$warmup"
    search_ms "$OPEN" >/dev/null
    gets_before=$(metric searcher_storage_gets_total)
    trips_before=$(metric searcher_storage_round_trips_total)
    cold=$(search_ms "$query")
    gets=$(( $(metric searcher_storage_gets_total) - gets_before ))
    trips=$(( $(metric searcher_storage_round_trips_total) - trips_before ))
    if [ "$warmup" = true ]; then
      row+=("$cold ms" "$gets" "$trips")
    else
      for _ in 1 2 3; do search_ms "$query" >/dev/null; done
      warm=$(search_ms "$query")
      row+=("$cold ms" "$gets" "$warm ms")
    fi
    stop_node
  done
  printf '%-34s %10s %6s %12s %10s %6s %10s\n' "$name" "${row[@]}"
done
