#!/usr/bin/env bash
# Prints the path of a virtualenv holding REQUIREMENTS, creating it on first use. Venvs live
# under ${QUARRY_VENV_DIR:-${TMPDIR:-/tmp}}/quarry-NAME-venvs/, keyed by the requirements
# file's hash, so a run reuses one until the pins change.
#
#   venv=$(tests/python-venv.sh NAME REQUIREMENTS)
set -euo pipefail
NAME="$1"
REQUIREMENTS="$2"
PYTHON="${PYTHON:-python3}"
VENV_ROOT="${QUARRY_VENV_DIR:-${TMPDIR:-/tmp}}/quarry-$NAME-venvs"
venv="$VENV_ROOT/$(sha256sum "$REQUIREMENTS" | cut -c1-16)"
mkdir -p "$VENV_ROOT"
# Tests run in parallel: on a fresh machine two of them would build the same venv at once,
# each deleting the other's (ensurepip then fails). The first builds it, the others wait.
exec 9>"$VENV_ROOT/.lock"
flock 9
if [[ ! -f "$venv/.complete" ]]; then
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" >&2
    touch "$venv/.complete"
fi
echo "$venv"
