#!/usr/bin/env bash
# Run Encotag's whole test suite on Debian/Ubuntu.  Idempotent: sets up what is missing first.
#
#   ./tools/test.sh [pytest arguments…]
#
# Calls tools/setup.sh without launching the app (test extras: pytest, pytest-qt, hypothesis, scikit-learn,
# ruff, mypy; xvfb, fluidsynth, espeak-ng), then `ruff check`, `ruff format --check` and `mypy app models`
# (any failure fails the command), then pytest with Qt offscreen and every user folder redirected into a
# temporary ENCOTAG_HOME, so a test run never touches your settings, heads or caches.
# Tests that need the shared teacher/data sets read ../shared and skip when it is absent.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ENCOTAG_NO_LAUNCH=1 ENCOTAG_EXTRAS="${ENCOTAG_EXTRAS:-test}" "$ROOT/tools/setup.sh"

home="$(mktemp -d "${TMPDIR:-/tmp}/encotag-test-home.XXXXXX")"
trap 'rm -rf "$home"' EXIT

export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
export ENCOTAG_HOME="$home"
VBIN="${ENCOTAG_VENV:-$ROOT/.venv}/bin"

# Lint, format and types first: any failure fails the command (and so CI) before the tests run.
lint=0
"$VBIN/ruff" check . || lint=1
"$VBIN/ruff" format --check . || lint=1
"$VBIN/mypy" app models || lint=1
if [[ $lint -ne 0 ]]; then
    echo "[test] ruff check, ruff format --check or mypy failed (see above); not running pytest" >&2
    exit 1
fi

status=0
"$VBIN/python" -m pytest -q "$@" || status=$?
if [[ $status -eq 5 ]]; then
    echo "[test] pytest collected no tests" >&2
fi
exit "$status"
