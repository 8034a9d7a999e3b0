#!/usr/bin/env bash
# Refreshes requirements/test.lock: the exact, hashed set of Python packages that the test command
# (scripts/test.sh) installs. Run it after changing dependencies in pyproject.toml or
# requirements/build.in, or to move the lock to today's releases (run scripts/test-latest.sh first
# to see whether they pass). The lock is universal (every platform and Python >= 3.10), compiled
# with uv, which this script installs into a throwaway virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check uv
"$tools/venv/bin/uv" pip compile pyproject.toml requirements/build.in --extra test \
  --universal --python-version 3.10 --generate-hashes --no-header "$@" \
  -o requirements/test.lock
echo "requirements/test.lock refreshed; commit it with the change that needed it."
