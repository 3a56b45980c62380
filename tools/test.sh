#!/usr/bin/env bash
# Run Encotag's whole test suite on Debian/Ubuntu.  Idempotent: sets up what is missing first.
#
#   ./tools/test.sh [pytest arguments…]
#
# Calls tools/setup.sh without launching the app (test extras: pytest, pytest-qt, hypothesis, scikit-learn,
# ruff, mypy; xvfb), then runs pytest with Qt offscreen and every user folder redirected into a
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
status=0
"${ENCOTAG_VENV:-$ROOT/.venv}/bin/python" -m pytest -q "$@" || status=$?
if [[ $status -eq 5 ]]; then
    echo "[test] pytest collected no tests" >&2
fi
exit "$status"
