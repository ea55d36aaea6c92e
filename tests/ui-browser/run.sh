#!/usr/bin/env bash
# Runs test_ui.py (or another script of this folder, e.g. measure.py for bench/ui.sh) in a
# virtualenv with the pinned Playwright (reused while requirements.txt does not change),
# against Debian's Chromium.
#
#   tests/ui-browser/run.sh SPEC_JSON
#   tests/ui-browser/run.sh measure.py ENDPOINT INDEX RUNS
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
VENV_ROOT="${QUARRY_VENV_DIR:-${TMPDIR:-/tmp}}/quarry-ui-venvs"
venv="$VENV_ROOT/$(sha256sum "$HERE/requirements.txt" | cut -c1-16)"
if [[ ! -f "$venv/.complete" ]]; then
    rm -rf "$venv"
    mkdir -p "$VENV_ROOT"
    "$PYTHON" -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt" >&2
    touch "$venv/.complete"
fi
script="test_ui.py"
if [[ "${1:-}" == *.py ]]; then
    script="$1"
    shift
fi
PYTHONDONTWRITEBYTECODE=1 exec "$venv/bin/python" "$HERE/$script" "$@"
