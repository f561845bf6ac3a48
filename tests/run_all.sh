#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs lint (ruff), types (mypy) and pytest.
# Usage: bash tests/run_all.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch is pinned exactly (torch==2.13.0): an open range would download a multi-GB CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[all]" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip check >/dev/null
# The browser test drives Debian's chromium through Playwright (never `playwright install`).
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check twin tests benchmarks
.venv/bin/python -m mypy twin
.venv/bin/python -m pytest "$@"
