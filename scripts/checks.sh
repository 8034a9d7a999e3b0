#!/usr/bin/env bash
# The checks of the test command, run against the Python environment that is active: the front
# end's install, type check and vitest suite, ruff, mypy and pytest. scripts/test.sh (locked
# dependencies) and scripts/test-latest.sh (newest releases) both end here.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd js && npm ci && npm run lint && npm test)
ruff check coderchat_ext tests bench
ruff format --check coderchat_ext tests bench
mypy
python -m pytest tests -q -p no:cacheprovider "$@"
