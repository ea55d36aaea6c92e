#!/usr/bin/env bash
# Flat at 10x the data: the fixed query set within a 10 s window (1% of one run's 1000 s
# of log time) over an index of one generated run (1M documents) and over an index of ten
# runs on consecutive days (10M documents, merged by the default policy), on one node, in
# one run, the two indexes timed in turn. The first day is the same data in both, so the
# window selects the same documents; what grows is everything around them.
#
#   bench/scale.sh [RUNS] [DOCS_PER_RUN]      (default 10 runs of 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
DOCS=${2:-1000000}
WORK=$(mktemp -d)
PORT=${QUARRY_BENCH_PORT:-7482}
ENDPOINT=http://127.0.0.1:$PORT
trap 'kill "$NODE_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet
BIN=target/release/quarry
printf 'rest:\n  listen_port: %s\ndata_dir: %s/qdata\nsearcher:\n  partial_result_cache_entries: 0\nindexer:\n  merge_interval_secs: 2\n' \
  "$PORT" "$WORK" > "$WORK/node.yaml"
"$BIN" run --config "$WORK/node.yaml" > "$WORK/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 300); do curl -sf "$ENDPOINT/health/readyz" >/dev/null && break; sleep 0.1; done

metric() {
  curl -sf "$ENDPOINT/metrics" | awk -v name="$1" '$1 == name {print $2}'
}
published_splits() {
  curl -sf "$ENDPOINT/api/v1/indexes/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["num_published_splits"])'
}

for name in one ten; do
  sed "s/^index_id: bench-logs/index_id: scale-$name/" bench/bench-logs.yaml > "$WORK/$name.yaml"
  "$BIN" index create --endpoint "$ENDPOINT" --index-config "$WORK/$name.yaml" >/dev/null
done
for day in $(seq 1 "$RUNS"); do
  "$BIN" generate-logs --docs "$DOCS" --seed 42 --start "$(printf '2026-01-%02dT00:00:00Z' "$day")" > "$WORK/day.ndjson"
  if [ "$day" = 1 ]; then
    "$BIN" ingest --endpoint "$ENDPOINT" --index scale-one --input-path "$WORK/day.ndjson" >/dev/null 2>&1
  fi
  "$BIN" ingest --endpoint "$ENDPOINT" --index scale-ten --input-path "$WORK/day.ndjson" >/dev/null 2>&1
  echo "day $day ingested: $(published_splits scale-ten) splits"
done
rm -f "$WORK/day.ndjson"

# Settled: merges completed, and none for 10 s.
START=$(date +%s)
last=-1; stable=0
while [ "$stable" -lt 20 ] && [ $(( $(date +%s) - START )) -lt 1800 ]; do
  sleep 0.5
  now=$(metric quarry_merges_completed_total)
  if [ "$now" = "$last" ] && [ "$now" != "0" ]; then stable=$((stable + 1)); else stable=0; last=$now; fi
done
echo "merges settled after $(( $(date +%s) - START )) s: scale-one $(published_splits scale-one) splits, scale-ten $(published_splits scale-ten) splits"

# Both indexes in turn, query by query and run by run, so that a busy moment of the
# shared machine weighs on both: timed one after the other, they differed by up to 40%
# from run to run.
target/release/bench --target "$ENDPOINT" --index scale-ten --vs-index scale-one \
  --window-secs 10 --window-offset-secs 495 --repetitions "${REPETITIONS:-100}"
