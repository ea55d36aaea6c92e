#!/usr/bin/env bash
# End-to-end benchmark on the standard dataset: indexing through the CLI over HTTP, then
# search latency over HTTP (median and p90 of 15 runs per query, warm).
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

printf 'rest:\n  listen_port: %s\ndata_dir: %s/qdata\n' "$PORT" "$WORK" > "$WORK/node.yaml"
"$BIN" run --config "$WORK/node.yaml" > "$WORK/node.log" 2>&1 &
NODE_PID=$!
ENDPOINT=http://127.0.0.1:$PORT
for _ in $(seq 1 100); do curl -sf "$ENDPOINT/health/readyz" >/dev/null && break; sleep 0.1; done
"$BIN" index create --endpoint "$ENDPOINT" --index-config bench/bench-logs.yaml >/dev/null

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
python3 - "$ENDPOINT" "$NODE_PID" <<'PY'
import json, sys, time, urllib.request
endpoint, pid = sys.argv[1], sys.argv[2]
def search(body):
    request = urllib.request.Request(f"{endpoint}/api/v1/bench-logs/search", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    return json.load(urllib.request.urlopen(request))
first = search({"query": "*", "max_hits": 1, "sort_by": "timestamp"})["hits"][0]["timestamp"]
last = search({"query": "*", "max_hits": 1})["hits"][0]["timestamp"]
from datetime import datetime
to_secs = lambda text: int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
start, end = to_secs(first), to_secs(last) + 1
trace = search({"query": "trace_id:*", "max_hits": 1})["hits"][0]["trace_id"]
queries = [
    ("body:failed top-20 by time", {"query": "body:failed", "max_hits": 20}),
    ("phrase connection reset by peer", {"query": "body:\"connection reset by peer\"", "max_hits": 20}),
    ("ERROR AND payments", {"query": "severity_text:ERROR AND service_name:payments", "max_hits": 20}),
    ("WARN in first 10% of time", {"query": "severity_text:WARN", "max_hits": 20, "start_timestamp": start,
                                   "end_timestamp": start + (end - start) // 10}),
    ("one trace_id", {"query": f"trace_id:{trace}", "max_hits": 20}),
    ("failed AND NOT INFO, 100 hits", {"query": "body:failed AND NOT severity_text:INFO", "max_hits": 100}),
    ("count all", {"query": "*", "max_hits": 0}),
]
for name, body in queries:
    times = []
    for _ in range(15):
        t = time.perf_counter()
        response = search(body)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(f"search: {name:34} median {times[7]:6.2f} ms  p90 {times[13]:6.2f} ms  ({response['num_hits']} hits)")
rss = [line for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS")][0].split()[1]
print(f"server RSS at rest after queries: {int(rss)/1024:.0f} MiB")
PY
