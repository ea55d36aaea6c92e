"""Emits log records through the OpenTelemetry Python SDK's logging handler and OTLP/HTTP
exporter (protobuf), as an instrumented application does, then prints the trace id the
records were logged under.

    emit.py ENDPOINT INDEX COUNT [BATCH]

ENDPOINT is the node root (http://127.0.0.1:7280); QUARRY_API_KEY, when set, is sent as
`Authorization: ApiKey ...`. Exits non-zero if the SDK reports a failed export.
"""

import logging
import os
import sys

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

endpoint, index, count = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3])
batch = int(sys.argv[4]) if len(sys.argv) > 4 else 512

failures = []


class FailureCounter(logging.Handler):
    """The exporter logs failed exports; the run fails if any batch was dropped."""

    def emit(self, record):
        if record.levelno >= logging.ERROR:
            failures.append(record.getMessage())


logging.getLogger("opentelemetry").addHandler(FailureCounter())

headers = {"x-quarry-index": index}
if os.environ.get("QUARRY_API_KEY"):
    headers["Authorization"] = "ApiKey " + os.environ["QUARRY_API_KEY"]
resource = Resource.create({"service.name": "checkout", "deployment.environment": "ci"})
provider = LoggerProvider(resource=resource)
exporter = OTLPLogExporter(endpoint=f"{endpoint}/api/v1/otlp/v1/logs", headers=headers, timeout=120)
provider.add_log_record_processor(
    BatchLogRecordProcessor(exporter, max_export_batch_size=batch, max_queue_size=max(count, 2048))
)
logger = logging.getLogger("quarry.otel.test")
logger.propagate = False
logger.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
logger.setLevel(logging.INFO)

tracer = TracerProvider(resource=resource).get_tracer("quarry.otel.test")
with tracer.start_as_current_span("checkout-request") as span:
    trace_id = format(span.get_span_context().trace_id, "032x")
    for n in range(count):
        if n % 10 == 0:
            logger.warning("payment %d declined", n, extra={"order_id": n, "amount": n * 1.5})
        else:
            logger.info("payment %d accepted", n, extra={"order_id": n, "amount": n * 1.5})

provider.force_flush(timeout_millis=180_000)
provider.shutdown()
if failures:
    print("export failures:", failures, file=sys.stderr)
    sys.exit(1)
print(trace_id)
