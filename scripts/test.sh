#!/usr/bin/env bash
# The test command: install the project with its test dependencies, install
# Debian's headless Chromium when it is missing (the report test opens a
# report in it), check the code with ruff (rules in pyproject.toml), then run
# pytest on every core (pytest-xdist; `-n 0` runs in one process) and exit
# with pytest's exit code.
# Arguments are passed to pytest, e.g. scripts/test.sh tests/test_cli.py -q
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet -e ".[test]"

if ! command -v chromium >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: chromium is not installed and there is no apt-get to install it" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

python3 -m ruff check --quiet .

exec python3 -m pytest -n auto "$@"
