#!/usr/bin/env bash
# The test command (README "Test it"). Installs the exact, hashed dependency set of
# requirements/test.lock (refresh it with scripts/lock.sh), then the package itself (editable,
# which builds the front end with npm), then runs scripts/checks.sh: the front end's type check
# and vitest suite, ruff, mypy and pytest. Works on a fresh machine with Python >= 3.10, pip and
# Node.js >= 18 with npm. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_system.sh
python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/test.lock
python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
exec bash scripts/checks.sh "$@"
