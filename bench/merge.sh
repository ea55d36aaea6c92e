#!/usr/bin/env bash
# Merges on the standard dataset: ingest it in many small commits (one split each), run the
# fixed query set over HTTP, let merges settle, run it again, and report merge throughput
# and the per-query latency ratio after/before, all in one run.
#
#   bench/merge.sh [NUM_DOCS] [COMMITS]      (default 1000000 docs in 200 commits)
set -euo pipefail
cd "$(dirname "$0")/.."
NUM_DOCS=${1:-1000000}
COMMITS=${2:-200}
WORK=$(mktemp -d)
PORT=${QUARRY_BENCH_PORT:-7481}
ENDPOINT=http://127.0.0.1:$PORT
trap 'kill "$NODE_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet
BIN=target/release/quarry
"$BIN" generate-logs --docs "$NUM_DOCS" --seed 42 > "$WORK/logs.ndjson"
split -n "l/$COMMITS" -d -a 4 "$WORK/logs.ndjson" "$WORK/chunk-"

start_node() {
  printf 'rest:\n  listen_port: %s\ndata_dir: %s/qdata\nsearcher:\n  partial_result_cache_entries: 0\nindexer:\n  merge_interval_secs: %s\n' \
    "$PORT" "$WORK" "$1" > "$WORK/node.yaml"
  "$BIN" run --config "$WORK/node.yaml" >> "$WORK/node.log" 2>&1 &
  NODE_PID=$!
  for _ in $(seq 1 300); do curl -sf "$ENDPOINT/health/readyz" >/dev/null && return; sleep 0.1; done
  echo "the node did not start:"; tail -20 "$WORK/node.log"; exit 1
}
published_splits() {
  curl -sf "$ENDPOINT/api/v1/indexes/bench-logs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["num_published_splits"])'
}
metric() {
  curl -sf "$ENDPOINT/metrics" | awk -v name="$1" '$1 == name {print $2}'
}

# No merges while loading: the planner's first pass runs before the index exists.
start_node 1000000
"$BIN" index create --endpoint "$ENDPOINT" --index-config bench/bench-logs.yaml >/dev/null
for chunk in "$WORK"/chunk-*; do
  curl -sf -XPOST "$ENDPOINT/api/v1/bench-logs/ingest?commit=force" --data-binary "@$chunk" >/dev/null
done
echo "before merges: $(published_splits) splits"
target/release/bench --target "$ENDPOINT" --index bench-logs | tee "$WORK/before.txt"

kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
start_node 1
CPU_BEFORE=$(awk '{print $14+$15}' "/proc/$NODE_PID/stat")
START=$(date +%s.%N)
# Settled: no merge published for 5 s.
last=-1; stable=0
while [ "$stable" -lt 10 ]; do
  sleep 0.5
  now=$(metric quarry_merges_completed_total)
  if [ "$now" = "$last" ] && [ "$now" != "0" ]; then stable=$((stable + 1)); else stable=0; last=$now; END=$(date +%s.%N); fi
done
CPU_AFTER=$(awk '{print $14+$15}' "/proc/$NODE_PID/stat")
python3 - "$(metric quarry_merges_completed_total)" "$(metric quarry_merge_input_bytes_total)" "$START" "$END" "$CPU_BEFORE" "$CPU_AFTER" "$(published_splits)" <<'PY'
import os, sys
merges, input_bytes, start, end, cpu0, cpu1, splits = sys.argv[1:]
wall = float(end) - float(start)
print(f"merges: {merges} merges read {int(input_bytes)/1e6:.1f} MB of splits in {wall:.1f} s -> "
      f"{int(input_bytes)/wall/1e6:.1f} MB/s; server CPU {(int(cpu1)-int(cpu0))/os.sysconf('SC_CLK_TCK'):.1f} s; "
      f"{splits} splits after")
PY
target/release/bench --target "$ENDPOINT" --index bench-logs | tee "$WORK/after.txt"
python3 - "$WORK/before.txt" "$WORK/after.txt" <<'PY'
import sys
def medians(path):
    rows = {}
    for line in open(path).read().splitlines()[1:]:
        cells = line.rsplit(None, 6)
        name, median = cells[0], float(cells[1])
        rows[name] = median
    return rows
before, after = medians(sys.argv[1]), medians(sys.argv[2])
print(f"{'query':<42} {'before':>10} {'after':>10} {'after/before':>13}")
for name, median in before.items():
    print(f"{name:<42} {median:>7.2f} ms {after[name]:>7.2f} ms {after[name] / median:>12.2f}x")
PY
