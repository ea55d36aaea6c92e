#!/usr/bin/env bash
# What API keys and TLS add to a search, measured on this machine in one run: three nodes
# over the same splits (no auth; an API key; an API key over HTTPS), and interleaved
# rounds of searches against each (bench/auth_overhead.py).
#
#   bench/auth_overhead.sh [NUM_DOCS] [REQUESTS]     (defaults 100000 and 3000)
set -euo pipefail
cd "$(dirname "$0")/.."
NUM_DOCS=${1:-100000}
REQUESTS=${2:-3000}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --quiet
BIN=target/release/quarry
SECRET=a-bench-secret-of-at-least-thirty-two-characters
KEY=$(python3 -c "import base64,sys; print(base64.b64encode(f'bench:{sys.argv[1]}'.encode()).decode())" "$SECRET")

# A CA and a certificate for 127.0.0.1, for the HTTPS node.
(cd "$WORK" &&
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=bench CA" \
    -keyout ca.key -out ca.pem -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null &&
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" -keyout node.key -out node.csr 2>/dev/null &&
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > node.ext &&
  openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out node.pem -extfile node.ext 2>/dev/null)

# One node builds the splits; the three share its index folder and metastore, and after
# the load nothing writes to them.
# start NAME PORT AUTH(0|1) TLS(0|1)
start() {
  local name=$1 port=$2 auth=$3 tls=$4 scheme=http
  mkdir -p "$WORK/$name"
  {
    echo "node_id: $name"
    echo "rest:"
    echo "  listen_port: $port"
    if [ "$tls" = 1 ]; then
      scheme=https
      echo "  tls: {cert_path: $WORK/node.pem, key_path: $WORK/node.key}"
    fi
    if [ "$auth" = 1 ]; then echo "auth: {bootstrap_api_key: 'bench:$SECRET'}"; fi
    echo "data_dir: $WORK/$name/qdata"
    echo "metastore_uri: $WORK/shared"
    echo "default_index_root_uri: $WORK/shared"
    echo "searcher: {partial_result_cache_entries: 0}"
  } > "$WORK/$name/node.yaml"
  "$BIN" run --config "$WORK/$name/node.yaml" > "$WORK/$name/node.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 300); do
    curl -sf --cacert "$WORK/ca.pem" "$scheme://127.0.0.1:$port/health/readyz" >/dev/null && return
    sleep 0.1
  done
  echo "node $name did not start:"; tail -20 "$WORK/$name/node.log"; exit 1
}
start plain 7601 0 0
"$BIN" index create --endpoint http://127.0.0.1:7601 --index-config bench/bench-logs.yaml >/dev/null
"$BIN" generate-logs --docs "$NUM_DOCS" --seed 42 > "$WORK/logs.ndjson"
"$BIN" ingest --endpoint http://127.0.0.1:7601 --index bench-logs --input-path "$WORK/logs.ndjson" >/dev/null
start keyed 7602 1 0
start tls 7603 1 1
echo "== $REQUESTS searches per variant over $NUM_DOCS documents, interleaved in rounds"
python3 bench/auth_overhead.py http://127.0.0.1:7601 http://127.0.0.1:7602 "$KEY" \
  https://127.0.0.1:7603 "$WORK/ca.pem" "$REQUESTS"
