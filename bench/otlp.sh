#!/usr/bin/env bash
# OTLP/HTTP protobuf ingest against NDJSON ingest of the same records, in one run: the
# standard dataset (`quarry generate-logs`) as OpenTelemetry log records, sent by
# `bench/otlp_ingest.py` with two requests in flight to a release node.
#
#   bench/otlp.sh [NUM_DOCS] [BATCH]      (defaults: 200000 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
NUM_DOCS=${1:-200000}
BATCH=${2:-2000}
WORK=$(mktemp -d)
PORT=${QUARRY_BENCH_PORT:-7482}
NODE_PID=
trap 'kill "$NODE_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet
BIN=target/release/quarry
"$BIN" generate-logs --docs "$NUM_DOCS" --seed 42 > "$WORK/logs.ndjson"
ENDPOINT=http://127.0.0.1:$PORT
printf 'rest:\n  listen_port: %s\ndata_dir: %s/qdata\n' "$PORT" "$WORK" > "$WORK/node.yaml"
"$BIN" run --config "$WORK/node.yaml" > "$WORK/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 100); do curl -sf "$ENDPOINT/health/readyz" >/dev/null && break; sleep 0.1; done

# The OpenTelemetry Python packages of tests/otel-python (their protobuf classes).
VENV=$(tests/python-venv.sh otel tests/otel-python/requirements.txt)
"$VENV/bin/python" bench/otlp_ingest.py "$ENDPOINT" "$WORK/logs.ndjson" --batch "$BATCH"
