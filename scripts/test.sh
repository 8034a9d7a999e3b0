#!/usr/bin/env bash
# The test command (README "Test it"): installs the package with its test extras (which builds
# the front end), then runs the front end's type check and vitest suite, ruff, mypy and the
# pytest suite. Works on a fresh machine with Python >= 3.10, pip and Node.js >= 18 with npm.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -e ".[test]"
(cd js && npm ci && npm run lint && npm test)
ruff check coderchat_ext tests bench
ruff format --check coderchat_ext tests bench
mypy
python -m pytest tests -q -p no:cacheprovider "$@"
