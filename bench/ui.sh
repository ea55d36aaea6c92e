#!/usr/bin/env bash
# How long the web UI's first search of the demo data takes to render in headless Chromium:
# a release node loads the demo (`quarry run --demo`, 200k events), then
# tests/ui-browser/measure.py opens the search page RUNS times, each in a fresh browser
# context, and reports the time from the search's start to its rendered hits and histogram
# (median, and the first run, which meets a cold split cache), and from navigation start.
#
#   bench/ui.sh [RUNS]      (default: 15)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-15}
WORK=$(mktemp -d)
PORT=${QUARRY_BENCH_PORT:-7483}
NODE_PID=
trap 'kill "$NODE_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet
BIN=$PWD/target/release/quarry
ENDPOINT=http://127.0.0.1:$PORT
printf 'rest:\n  listen_port: %s\ndata_dir: %s/qdata\n' "$PORT" "$WORK" > "$WORK/node.yaml"
(cd "$WORK" && exec "$BIN" run --demo --config "$WORK/node.yaml") > "$WORK/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 600); do
  grep -q "Quarry is running on" "$WORK/node.log" && break
  kill -0 "$NODE_PID" 2>/dev/null || { cat "$WORK/node.log"; exit 1; }
  sleep 0.2
done
grep -q "Quarry is running on" "$WORK/node.log" || { echo "the demo did not load"; tail -20 "$WORK/node.log"; exit 1; }
tests/ui-browser/run.sh measure.py "$ENDPOINT" demo-logs "$RUNS"
