#!/usr/bin/env bash
# Runs emit.py in a virtualenv with the pinned OpenTelemetry Python SDK and OTLP/HTTP
# exporter (reused while requirements.txt does not change).
#
#   tests/otel-python/run.sh http://127.0.0.1:7280 INDEX COUNT [BATCH]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv=$("$HERE/../python-venv.sh" otel "$HERE/requirements.txt")
PYTHONDONTWRITEBYTECODE=1 exec "$venv/bin/python" "$HERE/emit.py" "$@"
