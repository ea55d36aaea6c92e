#!/usr/bin/env bash
# Runs emit.py in a virtualenv with the pinned OpenTelemetry Python SDK and OTLP/HTTP
# exporter (reused while requirements.txt does not change).
#
#   tests/otel-python/run.sh http://127.0.0.1:7280 INDEX COUNT [BATCH]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
VENV_ROOT="${QUARRY_VENV_DIR:-${TMPDIR:-/tmp}}/quarry-otel-venvs"
venv="$VENV_ROOT/$(sha256sum "$HERE/requirements.txt" | cut -c1-16)"
if [[ ! -f "$venv/.complete" ]]; then
    rm -rf "$venv"
    mkdir -p "$VENV_ROOT"
    "$PYTHON" -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt" >&2
    touch "$venv/.complete"
fi
PYTHONDONTWRITEBYTECODE=1 exec "$venv/bin/python" "$HERE/emit.py" "$@"
