#!/usr/bin/env bash
# Runs schemathesis against a running Quarry node's OpenAPI document: every operation, with
# generated valid and invalid requests, checking that no answer is a 5xx, that every answer
# matches the documented status codes, content types, headers and schemas, that methods
# the document does not list get 405, and that requests without a credential get 401.
#
#   QUARRY_API_KEY=<encoded> tests/schemathesis/run.sh http://127.0.0.1:7280 [extra schemathesis args]
#
# The virtualenv lives under ${QUARRY_VENV_DIR:-${TMPDIR:-/tmp}}/quarry-schemathesis-venvs/,
# keyed by the requirements file's hash. Bounded by --max-time (default 120 s).
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 QUARRY_URL [schemathesis args]" >&2
    exit 2
fi
QUARRY_URL="${1%/}"
shift
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv=$("$HERE/../python-venv.sh" schemathesis "$HERE/requirements.txt")

auth=()
if [[ -n "${QUARRY_API_KEY:-}" ]]; then
    auth=(-H "Authorization: ApiKey $QUARRY_API_KEY")
fi
tls=()
if [[ -n "${QUARRY_CA_CERT:-}" ]]; then
    tls=(--tls-verify "$QUARRY_CA_CERT")
fi

# Not checked:
# - `positive_data_acceptance`: a schema cannot say which strings are valid queries, index
#   ids that exist or keys that can be revoked, so valid-looking requests are rightly refused;
# - `negative_data_rejection`: Quarry reads input as Elasticsearch does, accepting more than
#   the schemas state (unknown search keys are ignored, a bad NDJSON line is refused in a
#   200 answer's items while the others go in, serde reads a struct from a JSON array).
# Excluded operations: revoking keys (the run would revoke its own credential); the
# security tests cover them.
export SCHEMATHESIS_HOOKS=hooks
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
# schemathesis keeps a cache of crashes in its working directory: not in the checkout.
workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
cd "$workdir"
"$venv/bin/schemathesis" run "$QUARRY_URL/api/v1/openapi.json" \
    "${auth[@]}" "${tls[@]}" \
    --checks all --exclude-checks positive_data_acceptance,negative_data_rejection \
    --exclude-operation-id invalidate_native --exclude-operation-id invalidate_elastic \
    --max-examples "${QUARRY_SCHEMATHESIS_EXAMPLES:-25}" \
    --max-time "${QUARRY_SCHEMATHESIS_SECONDS:-120}" \
    --workers 2 --seed "${QUARRY_SCHEMATHESIS_SEED:-1}" \
    --generation-database none --no-color \
    "$@"
