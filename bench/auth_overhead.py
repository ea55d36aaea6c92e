#!/usr/bin/env python3
"""What API keys (and TLS) cost a request: the same searches against nodes without
authentication, with an API key, and with an API key over HTTPS, interleaved in rounds on
kept-alive connections, so that a noisy machine slows every variant alike.

    bench/auth_overhead.py PLAIN_URL KEYED_URL ENCODED_KEY [TLS_URL CA_FILE] [REQUESTS]

Prints each variant's median and p99 latency and their ratios to the plain one.
"""
import http.client
import json
import ssl
import statistics
import sys
import time
import urllib.parse

QUERIES = [
    {"query": "severity_text:ERROR", "max_hits": 10},
    {"query": "body:failed", "max_hits": 20},
    {"query": "*", "max_hits": 0},
]


def connect(url, ca_file=None):
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "https":
        context = ssl.create_default_context(cafile=ca_file)
        return http.client.HTTPSConnection(parsed.hostname, parsed.port, context=context)
    return http.client.HTTPConnection(parsed.hostname, parsed.port)


def timed_round(connection, headers, requests):
    latencies = []
    for n in range(requests):
        body = json.dumps(QUERIES[n % len(QUERIES)])
        started = time.perf_counter()
        connection.request("POST", "/api/v1/bench-logs/search", body, headers)
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            sys.exit(f"search answered {response.status}")
    return latencies


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        sys.exit(__doc__)
    plain_url, keyed_url, key = args[0], args[1], args[2]
    tls_url, ca_file = (args[3], args[4]) if len(args) >= 5 else (None, None)
    requests = int(args[5] if len(args) >= 6 else (args[3] if len(args) == 4 else 300))
    json_headers = {"Content-Type": "application/json"}
    keyed_headers = dict(json_headers, Authorization=f"ApiKey {key}")
    variants = [("no auth", connect(plain_url), json_headers),
                ("API key", connect(keyed_url), keyed_headers)]
    if tls_url:
        variants.append(("API key over TLS", connect(tls_url, ca_file), keyed_headers))
    samples = {name: [] for name, _, _ in variants}
    for _ in range(2):  # warm-up: caches, connections, TLS sessions
        for name, connection, headers in variants:
            timed_round(connection, headers, 30)
    for _ in range(10):
        for name, connection, headers in variants:
            samples[name].extend(timed_round(connection, headers, requests // 10))
    base = statistics.median(samples["no auth"])
    for name, values in samples.items():
        values.sort()
        median = statistics.median(values)
        p99 = values[int(len(values) * 0.99) - 1]
        print(f"{name:<18} median {median * 1000:.3f} ms  p99 {p99 * 1000:.3f} ms  "
              f"({median / base:.2f}x the median without auth, {len(values)} requests)")


if __name__ == "__main__":
    main()
