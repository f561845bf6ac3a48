#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs lint (ruff), types (mypy) and pytest.
# Usage: bash tests/run_all.sh [extra pytest args]
# `source tests/run_all.sh` only defines the functions (tests/test_hostile_outputs.py checks install_chromium).
set -euo pipefail

# Tries of the chromium install, and seconds between them (apt also waits up to 120 s for its lock in each).
APT_TRIES=${APT_TRIES:-3}
APT_RETRY_SLEEP_S=${APT_RETRY_SLEEP_S:-10}

# The browser test drives Debian's chromium through Playwright (never `playwright install`).
# Nothing to do when chromium is on PATH. Otherwise apt-get waits for a lock another apt holds
# (DPkg::Lock::Timeout) and the install is tried APT_TRIES times; if it still fails, say so and go
# on: every other test runs, and the browser test fails naming the missing chromium.
install_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    return 0
  fi
  local apt=(apt-get -o DPkg::Lock::Timeout=120 -qq) try
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "run_all.sh: chromium is missing and installing it needs root (no sudo here):" \
        "apt-get install -y chromium; the browser test will fail" >&2
      return 0
    fi
    apt=(sudo "${apt[@]}")
  fi
  for ((try = 1; try <= APT_TRIES; try++)); do
    if "${apt[@]}" update && "${apt[@]}" install -y chromium >/dev/null; then
      return 0
    fi
    echo "run_all.sh: installing chromium with apt-get failed (try $try of $APT_TRIES)" >&2
    if [ "$try" -lt "$APT_TRIES" ]; then
      sleep "$APT_RETRY_SLEEP_S"
    fi
  done
  echo "run_all.sh: could not install chromium after $APT_TRIES tries (apt-get's lock held by another" \
    "apt, or no package source?); running the other tests, the browser test will fail." \
    "Install it with: apt-get install -y chromium" >&2
  return 0
}

main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  local py=${PYTHON:-python3}
  if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
  fi
  # torch is pinned exactly (torch==2.13.0): an open range would download a multi-GB CUDA build.
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[all]" 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -m pip check >/dev/null
  install_chromium
  .venv/bin/ruff check twin tests benchmarks
  .venv/bin/python -m mypy twin
  .venv/bin/lint-imports  # the contracts in pyproject.toml: layers, one wiring point, no cycles, ...
  .venv/bin/python -m pytest "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
