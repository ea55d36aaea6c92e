#!/usr/bin/env python3
"""Times the same search on two running nodes in turn, request by request, so that both
see the same machine: prints each node's median and the first's over the second's.

    python3 bench/in_turn.py --ports 7491 7492 --index bench-logs 'trace_id:…' 'body:failed'
"""
import argparse
import http.client
import json
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("queries", nargs="+")
    parser.add_argument("--ports", type=int, nargs=2, required=True)
    parser.add_argument("--index", default="bench-logs")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--max-hits", type=int, default=20)
    args = parser.parse_args()
    # Keep-alive connections, as a dashboard's client keeps them.
    connections = [http.client.HTTPConnection("127.0.0.1", port) for port in args.ports]
    for query in args.queries:
        body = json.dumps({"query": query, "max_hits": args.max_hits})
        times = [[], []]
        for turn in range(args.requests):
            # Alternates which node goes first.
            for node in (0, 1) if turn % 2 == 0 else (1, 0):
                started = time.perf_counter()
                connections[node].request(
                    "POST",
                    f"/api/v1/{args.index}/search",
                    body,
                    {"Content-Type": "application/json"},
                )
                response = connections[node].getresponse()
                response.read()
                if response.status != 200:
                    raise SystemExit(f"port {args.ports[node]}: HTTP {response.status}")
                times[node].append(time.perf_counter() - started)
        medians = [sorted(node_times)[len(node_times) // 2] * 1000 for node_times in times]
        print(
            f"{query:<50} :{args.ports[0]} {medians[0]:.3f} ms  "
            f":{args.ports[1]} {medians[1]:.3f} ms  {medians[0] / medians[1]:.2f}x"
        )


if __name__ == "__main__":
    main()
