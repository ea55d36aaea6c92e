"""Schemathesis hooks for Quarry's OpenAPI run (tests/schemathesis/run.sh).

NDJSON bodies (`_bulk`, `_msearch`, ingest) are documented as arrays of objects, one per
line: generated arrays go on the wire as NDJSON; anything else (a negative case) goes as
its JSON text, so the node still has to refuse it in words.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, list):
        return "".join(json.dumps(item) + "\n" for item in value).encode("utf-8", "surrogatepass")
    return json.dumps(value).encode("utf-8", "surrogatepass")


# Loki's protobuf pushes are opaque bytes to the schema: generated ones must be refused in
# words (400), never crash the node.
schemathesis.serializer.alias("application/x-protobuf", "application/octet-stream")
