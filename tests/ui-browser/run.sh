#!/usr/bin/env bash
# Runs test_ui.py (or another script of this folder, e.g. measure.py for bench/ui.sh) in a
# virtualenv with the pinned Playwright (reused while requirements.txt does not change),
# against Debian's Chromium.
#
#   tests/ui-browser/run.sh SPEC_JSON
#   tests/ui-browser/run.sh measure.py ENDPOINT INDEX RUNS
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv=$("$HERE/../python-venv.sh" ui "$HERE/requirements.txt")
script="test_ui.py"
if [[ "${1:-}" == *.py ]]; then
    script="$1"
    shift
fi
PYTHONDONTWRITEBYTECODE=1 exec "$venv/bin/python" "$HERE/$script" "$@"
