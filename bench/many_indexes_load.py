#!/usr/bin/env python3
"""Sends 200-document batches from FILE to COUNT indexes (many-COUNT-1 … many-COUNT-COUNT) in
turn, with 8 concurrent clients, for 10 seconds; prints how many requests were acknowledged.

Usage: many_indexes_load.py ENDPOINT COUNT FILE"""
import itertools, json, sys, threading, time, urllib.request

endpoint, count, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(path, "rb").read().splitlines(keepends=True)
batches = [b"".join(lines[i:i + 200]) for i in range(0, len(lines), 200)]
deadline = time.time() + 10
sent = [0]
lock = threading.Lock()

def client(offset):
    for n in itertools.count(offset, 8):
        if time.time() > deadline:
            return
        index = f"many-{count}-{n % count + 1}"
        request = urllib.request.Request(f"{endpoint}/api/v1/{index}/ingest", data=batches[n % len(batches)])
        json.load(urllib.request.urlopen(request))
        with lock:
            sent[0] += 1

threads = [threading.Thread(target=client, args=(offset,)) for offset in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(sent[0])
