#!/usr/bin/env python3
"""Pushes an NDJSON file through Quarry's ingest endpoint with N concurrent clients.

Usage: ingest_clients.py ENDPOINT[,ENDPOINT…] INDEX FILE [--clients 8] [--batch-mib 4]
Batches are whole lines; a 429 is retried after a short pause. With several endpoints
(nodes of a cluster), clients are spread over them in turn. Prints wall seconds, counts and
the acknowledgement latency of the requests (p50, p99) as JSON on the last line."""
import argparse, json, queue, threading, time, urllib.error, urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("endpoint"); ap.add_argument("index"); ap.add_argument("file")
ap.add_argument("--clients", type=int, default=8)
ap.add_argument("--batch-mib", type=float, default=4.0)
ap.add_argument("--no-force", action="store_true", help="leave the documents to commit_timeout_secs")
args = ap.parse_args()

batches = []
with open(args.file, "rb") as f:
    limit = int(args.batch_mib * 1024 * 1024)
    current = []
    size = 0
    for line in f:
        current.append(line); size += len(line)
        if size >= limit:
            batches.append(b"".join(current)); current = []; size = 0
    if current:
        batches.append(b"".join(current))

work = queue.Queue()
for batch in batches:
    work.put(batch)
stats = {"ingested": 0, "rejected": 0, "throttled": 0}
lock = threading.Lock()

endpoints = args.endpoint.split(",")
latencies = []

def post(body, commit="auto", endpoint=endpoints[0]):
    url = f"{endpoint}/api/v1/{args.index}/ingest?commit={commit}"
    while True:
        try:
            request = urllib.request.Request(url, data=body, headers={"content-type": "application/x-ndjson"})
            return json.load(urllib.request.urlopen(request))
        except urllib.error.HTTPError as error:
            if error.code != 429:
                raise
            with lock:
                stats["throttled"] += 1
            time.sleep(0.05)

def client(endpoint):
    while True:
        try:
            body = work.get_nowait()
        except queue.Empty:
            return
        sent = time.perf_counter()
        answer = post(body, endpoint=endpoint)
        with lock:
            latencies.append(time.perf_counter() - sent)
            stats["ingested"] += answer["num_ingested_docs"]
            stats["rejected"] += answer["num_rejected_docs"]

start = time.perf_counter()
threads = [threading.Thread(target=client, args=(endpoints[n % len(endpoints)],)) for n in range(args.clients)]
for thread in threads: thread.start()
for thread in threads: thread.join()
acked = time.perf_counter() - start
if not args.no_force:
    for endpoint in endpoints:
        post(b"", commit="force", endpoint=endpoint)
searchable = time.perf_counter() - start
latencies.sort()
def percentile(fraction):
    return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] if latencies else 0.0
print(json.dumps({"acked_secs": acked, "searchable_secs": searchable, "batches": len(batches),
                  "ack_p50_ms": percentile(0.50) * 1e3, "ack_p99_ms": percentile(0.99) * 1e3, **stats}))
