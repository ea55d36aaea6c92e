#!/usr/bin/env bash
# What durability costs: the standard dataset (1M docs from `quarry generate-logs`) pushed
# through the HTTP ingest endpoint by N concurrent clients, once with the WAL fsync on
# (the default) and once with it off (`ingest.wal_sync: false`).
#
#   bench/ingest.sh [NUM_DOCS] [CLIENTS] [BATCH_MIB]      (defaults: 1000000 8 1)
set -euo pipefail
cd "$(dirname "$0")/.."
NUM_DOCS=${1:-1000000}
CLIENTS=${2:-8}
BATCH_MIB=${3:-1}
WORK=$(mktemp -d)
PORT=${QUARRY_BENCH_PORT:-7481}
NODE_PID=
trap 'kill "$NODE_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet
BIN=target/release/quarry
"$BIN" generate-logs --docs "$NUM_DOCS" --seed 42 > "$WORK/logs.ndjson"
INPUT_BYTES=$(stat -c %s "$WORK/logs.ndjson")
ENDPOINT=http://127.0.0.1:$PORT

run() {
  local sync=$1
  rm -rf "$WORK/qdata"
  printf 'rest:\n  listen_port: %s\ndata_dir: %s/qdata\ningest:\n  wal_sync: %s\n' "$PORT" "$WORK" "$sync" > "$WORK/node.yaml"
  "$BIN" run --config "$WORK/node.yaml" > "$WORK/node-$sync.log" 2>&1 &
  NODE_PID=$!
  for _ in $(seq 1 100); do curl -sf "$ENDPOINT/health/readyz" >/dev/null && break; sleep 0.1; done
  "$BIN" index create --endpoint "$ENDPOINT" --index-config bench/bench-logs.yaml >/dev/null
  local cpu_before fsyncs_before cpu_after fsyncs_after result rss_kb
  cpu_before=$(awk '{print $14+$15}' "/proc/$NODE_PID/stat")
  fsyncs_before=$(curl -s "$ENDPOINT/metrics" | awk '/^quarry_wal_fsyncs_total/ {print $2}')
  result=$(python3 bench/ingest_clients.py "$ENDPOINT" bench-logs "$WORK/logs.ndjson" --clients "$CLIENTS" --batch-mib "$BATCH_MIB" | tail -1)
  cpu_after=$(awk '{print $14+$15}' "/proc/$NODE_PID/stat")
  fsyncs_after=$(curl -s "$ENDPOINT/metrics" | awk '/^quarry_wal_fsyncs_total/ {print $2}')
  rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$NODE_PID/status")
  python3 - "$sync" "$NUM_DOCS" "$INPUT_BYTES" "$CLIENTS" "$result" "$cpu_before" "$cpu_after" "$fsyncs_before" "$fsyncs_after" "$rss_kb" <<'PY'
import json, os, sys
sync, docs, input_bytes, clients, result, cpu0, cpu1, f0, f1, rss_kb = sys.argv[1:]
result = json.loads(result)
acked = result["acked_secs"]
ticks = os.sysconf("SC_CLK_TCK")
fsyncs = int(float(f1 or 0)) - int(float(f0 or 0))
print(f"wal_sync={sync:5} clients={clients}: {int(docs)/acked/1e3:.0f}k docs/s, {int(input_bytes)/acked/1e6:.1f} MB/s acknowledged "
      f"({acked:.2f} s; searchable after {result['searchable_secs']:.2f} s), server CPU {(int(cpu1)-int(cpu0))/ticks:.1f} s, "
      f"peak RSS {int(rss_kb)/1024:.0f} MiB, {fsyncs} fsyncs ({fsyncs/acked:.0f}/s), "
      f"{result['batches']} requests, {result['throttled']} throttled (429)")
PY
  kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
}

run true
run false
