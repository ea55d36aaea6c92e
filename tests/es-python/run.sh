#!/usr/bin/env bash
# Runs the official Elasticsearch Python client compatibility tests against a running
# Quarry node, once with the pinned 8.x client and once with the pinned 9.x client.
#
#   tests/es-python/run.sh http://127.0.0.1:7280
#
# Virtualenvs live under ${QUARRY_VENV_DIR:-${TMPDIR:-/tmp}}/quarry-es-venvs/, one per
# requirements file, keyed by the file's hash: they are reused while the pins don't change.
# Each run creates (and afterwards deletes) its own index, es-py-<major>-<random>.
# Extra pytest arguments: QUARRY_ES_PYTEST_ARGS="-k scroll -x".
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 QUARRY_URL   (the node root, e.g. http://127.0.0.1:7280)" >&2
    exit 2
fi
QUARRY_URL="${1%/}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV_ROOT="${QUARRY_VENV_DIR:-${TMPDIR:-/tmp}}/quarry-es-venvs"
PYTHON="${PYTHON:-python3}"
mkdir -p "$VENV_ROOT"

# QUARRY_CA_CERT: the CA of a node that serves HTTPS.
if ! "$PYTHON" -c 'import os, ssl, sys, urllib.request; ca = os.environ.get("QUARRY_CA_CERT"); urllib.request.urlopen(sys.argv[1] + "/health/readyz", timeout=10, context=ssl.create_default_context(cafile=ca) if ca else None)' "$QUARRY_URL" 2>/dev/null; then
    echo "Quarry at $QUARRY_URL is not ready (GET /health/readyz failed)" >&2
    exit 2
fi

# Makes (or reuses) the venv for one requirements file and prints its path.
venv_for() {
    local requirements="$1" name hash venv
    name="$(basename "$requirements" .txt)"
    hash="$(sha256sum "$requirements" | cut -c1-16)"
    venv="$VENV_ROOT/$name-$hash"
    if [[ ! -f "$venv/.complete" ]]; then
        rm -rf "$venv"
        "$PYTHON" -m venv "$venv" >&2
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2
        touch "$venv/.complete"
    fi
    echo "$venv"
}

failed=()
for major in 8 9; do
    requirements="$HERE/requirements-es$major.txt"
    venv="$(venv_for "$requirements")"
    version="$("$venv/bin/python" -c 'import elasticsearch; print(elasticsearch.__versionstr__)')"
    index="es-py-$major-$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"
    echo "=== elasticsearch-py $version (requirements-es$major.txt) against $QUARRY_URL, index $index ==="
    if ! (cd "$HERE" && QUARRY_URL="$QUARRY_URL" QUARRY_ES_INDEX="$index" PYTHONDONTWRITEBYTECODE=1 \
        "$venv/bin/python" -m pytest test_es_clients.py -p no:cacheprovider -q -rfE --tb=short \
        ${QUARRY_ES_PYTEST_ARGS:-}); then
        failed+=("elasticsearch-py $version")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED with: ${failed[*]}"
    exit 1
fi
echo "all tests passed with elasticsearch-py 8 and 9"
