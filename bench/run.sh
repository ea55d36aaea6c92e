#!/usr/bin/env bash
# End-to-end benchmark on the standard dataset: indexing through the CLI over HTTP, then
# the fixed query set over HTTP (median and p90 of 15 runs per query, warm) next to a raw
# tantivy index of the same documents and schema (src/bin/bench.rs).
#
#   bench/run.sh [NUM_DOCS]        (default 1000000; needs ../shared/bench/gen_logs.py)
set -euo pipefail
cd "$(dirname "$0")/.."
NUM_DOCS=${1:-1000000}
WORK=$(mktemp -d)
PORT=${QUARRY_BENCH_PORT:-7480}
trap 'kill "$NODE_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet
BIN=target/release/quarry
GEN=../shared/bench/gen_logs.py
python3 "$GEN" --docs "$NUM_DOCS" --seed 42 > "$WORK/logs.ndjson"
INPUT_BYTES=$(stat -c %s "$WORK/logs.ndjson")

printf 'rest:\n  listen_port: %s\ndata_dir: %s/qdata\nsearcher:\n  partial_result_cache_entries: 0\n' "$PORT" "$WORK" > "$WORK/node.yaml"
"$BIN" run --config "$WORK/node.yaml" > "$WORK/node.log" 2>&1 &
NODE_PID=$!
ENDPOINT=http://127.0.0.1:$PORT
for _ in $(seq 1 100); do curl -sf "$ENDPOINT/health/readyz" >/dev/null && break; sleep 0.1; done
"$BIN" index create --endpoint "$ENDPOINT" --index-config "${QUARRY_BENCH_INDEX_CONFIG:-bench/bench-logs.yaml}" >/dev/null

CPU_BEFORE=$(awk '{print $14+$15}' "/proc/$NODE_PID/stat")
START=$(date +%s.%N)
"$BIN" ingest --endpoint "$ENDPOINT" --index bench-logs --input-path "$WORK/logs.ndjson" >/dev/null 2>&1
END=$(date +%s.%N)
CPU_AFTER=$(awk '{print $14+$15}' "/proc/$NODE_PID/stat")
PEAK_RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$NODE_PID/status")
SPLIT_BYTES=$(du -sb "$WORK/qdata/indexes/bench-logs" | cut -f1)
python3 - "$NUM_DOCS" "$INPUT_BYTES" "$START" "$END" "$CPU_BEFORE" "$CPU_AFTER" "$PEAK_RSS_KB" "$SPLIT_BYTES" <<'PY'
import os, sys
docs, input_bytes, start, end, cpu0, cpu1, rss_kb, split_bytes = sys.argv[1:]
wall = float(end) - float(start)
ticks = os.sysconf("SC_CLK_TCK")
print(f"indexing: {int(docs)} docs, {int(input_bytes)/1e6:.1f} MB in {wall:.2f} s wall -> "
      f"{int(docs)/wall/1e3:.0f}k docs/s, {int(input_bytes)/wall/1e6:.1f} MB/s; "
      f"server CPU {(int(cpu1)-int(cpu0))/ticks:.1f} s; peak RSS {int(rss_kb)/1024:.0f} MiB; "
      f"stored {int(split_bytes)/int(input_bytes):.3f} x input")
PY

sleep 12  # let the allocator return indexing memory before measuring RSS at rest
target/release/bench --target "$ENDPOINT" --index bench-logs --input "$WORK/logs.ndjson"
echo "server RSS at rest after queries: $(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$NODE_PID/status") MiB"
