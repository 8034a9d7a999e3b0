#!/usr/bin/env bash
# The test command (README "Test it"): installs the package with its test extras, then runs
# ruff, mypy and the pytest suite. Works on a fresh machine with Python >= 3.10 and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -e ".[test]"
ruff check coderchat_ext tests bench
ruff format --check coderchat_ext tests bench
mypy
python -m pytest tests -q -p no:cacheprovider "$@"
