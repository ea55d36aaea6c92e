"""OTLP/HTTP protobuf ingest against NDJSON ingest of the same records, on a running node.

    otlp_ingest.py ENDPOINT LOGS_NDJSON [--batch N] [--clients C]

Reads the standard dataset (`quarry generate-logs`), turns each line into an OTLP log record
(service as the resource's service.name, severity, body, attributes, trace id), and encodes
batches of `--batch` records as ExportLogsServiceRequest protobufs and, for the same
records, as NDJSON documents of the OpenTelemetry mapping the node writes them with. Both
are encoded before the clock starts. Then it sends the OTLP batches into `bench-otlp`
(created on first export) and the NDJSON batches into `bench-ndjson` (same mapping) with
`--clients` requests in flight, and prints one JSON line per path: records, payload bytes,
seconds until every batch was acknowledged, and until all were searchable.
"""

import argparse
import concurrent.futures
import json
import sys
import time
import urllib.request

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

SEVERITY = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}


def nanos(text):
    # 2026-01-01T00:00:00.000087Z
    date, clock = text.rstrip("Z").split("T")
    seconds, _, fraction = clock.partition(".")
    epoch = time.mktime(time.strptime(f"{date}T{seconds}", "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return int(epoch) * 1_000_000_000 + int((fraction + "000000000")[:9])


def any_value(value):
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def attributes_of(line):
    attributes = {key: line[key] for key in ("host", "tenant_id") if key in line}
    attributes.update(line.get("attributes", {}))
    return attributes


def otlp_batch(lines):
    by_service = {}
    for line in lines:
        record = LogRecord(
            time_unix_nano=nanos(line["timestamp"]),
            observed_time_unix_nano=nanos(line["timestamp"]),
            severity_number=SEVERITY.get(line["severity_text"], 0),
            severity_text=line["severity_text"],
            body=AnyValue(string_value=line["body"]),
            attributes=[KeyValue(key=k, value=any_value(v)) for k, v in attributes_of(line).items()],
            trace_id=bytes.fromhex(line.get("trace_id", "")),
        )
        by_service.setdefault(line["service_name"], []).append(record)
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))]),
                scope_logs=[ScopeLogs(log_records=records)],
            )
            for service, records in by_service.items()
        ]
    )
    return request.SerializeToString()


def ndjson_batch(lines):
    documents = []
    for line in lines:
        timestamp = nanos(line["timestamp"])
        document = {
            "timestamp_nanos": timestamp,
            "observed_timestamp_nanos": timestamp,
            "service_name": line["service_name"],
            "severity_text": line["severity_text"],
            "severity_number": SEVERITY.get(line["severity_text"], 0),
            "body": {"message": line["body"]},
            "attributes": attributes_of(line),
            "dropped_attributes_count": 0,
            "trace_flags": 0,
            "resource_attributes": {"service.name": line["service_name"]},
            "resource_dropped_attributes_count": 0,
        }
        if "trace_id" in line:
            document["trace_id"] = line["trace_id"]
        documents.append(json.dumps(document))
    return ("\n".join(documents) + "\n").encode()


def post(url, body, content_type, index=None):
    headers = {"Content-Type": content_type}
    if index:
        headers["X-Quarry-Index"] = index
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    while True:
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            if error.code not in (429, 503):
                raise
            time.sleep(float(error.headers.get("Retry-After", "1")))


def send_all(url, batches, content_type, clients, index):
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(post, url, batch, content_type, index) for batch in batches]:
            future.result()
    return time.monotonic() - started, started


def searchable(endpoint, index, expected, started):
    post(f"{endpoint}/api/v1/{index}/ingest?commit=force", b"", "application/x-ndjson")
    while True:
        request = urllib.request.Request(
            f"{endpoint}/api/v1/{index}/search",
            data=json.dumps({"query": "*", "max_hits": 0}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request) as response:
            if json.load(response)["num_hits"] >= expected:
                return time.monotonic() - started
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("logs")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    endpoint = args.endpoint.rstrip("/")
    with open(args.logs) as file:
        lines = [json.loads(line) for line in file if line.strip()]
    chunks = [lines[i:i + args.batch] for i in range(0, len(lines), args.batch)]
    otlp = [otlp_batch(chunk) for chunk in chunks]
    ndjson = [ndjson_batch(chunk) for chunk in chunks]

    results = []
    for path in ["otlp", "ndjson"]:
        index = f"bench-{path}"
        if path == "otlp":
            # Created on first export with the OpenTelemetry mapping.
            url, batches, content_type = f"{endpoint}/api/v1/otlp/v1/logs", otlp, "application/x-protobuf"
        else:
            # The same mapping, so that both paths index the same documents.
            with urllib.request.urlopen(f"{endpoint}/api/v1/indexes/bench-otlp") as response:
                config = json.load(response)["index_config"]
            config["index_id"] = index
            config.pop("index_uri", None)
            post(f"{endpoint}/api/v1/indexes", json.dumps(config).encode(), "application/json")
            url, batches, content_type = f"{endpoint}/api/v1/{index}/ingest", ndjson, "application/x-ndjson"
        acked, started = send_all(url, batches, content_type, args.clients, index)
        ready = searchable(endpoint, index, len(lines), started)
        results.append({
            "path": path,
            "records": len(lines),
            "payload_bytes": sum(len(batch) for batch in batches),
            "acked_secs": acked,
            "searchable_secs": ready,
        })
    for row in results:
        print(json.dumps(row))
    for row in results:
        acked = row["acked_secs"]
        print(f"{row['path']:6}: {row['records'] / acked / 1e3:.0f}k records/s, "
              f"{row['payload_bytes'] / acked / 1e6:.1f} MB/s of payload ({row['payload_bytes'] / 1e6:.1f} MB), "
              f"acknowledged in {acked:.2f} s, all searchable after {row['searchable_secs']:.2f} s")
    otlp, ndjson = results
    print(f"OTLP / NDJSON, time to acknowledge: {otlp['acked_secs'] / ndjson['acked_secs']:.2f}x; "
          f"to searchable: {otlp['searchable_secs'] / ndjson['searchable_secs']:.2f}x; "
          f"payload: {otlp['payload_bytes'] / ndjson['payload_bytes']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
