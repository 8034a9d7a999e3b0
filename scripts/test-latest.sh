#!/usr/bin/env bash
# The test command against the newest releases of every dependency (no lock), in a fresh virtual
# environment (.venv-latest), so that a new SDK or Jupyter release that breaks us shows up before
# the lock is refreshed. Run it before scripts/lock.sh, and whenever a provider SDK or Jupyter
# ships a release. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_system.sh
rm -rf .venv-latest
python -m venv .venv-latest
source .venv-latest/bin/activate
python -m pip install --quiet --disable-pip-version-check --upgrade pip
python -m pip install --quiet --disable-pip-version-check --upgrade --upgrade-strategy eager -e ".[test]"
python -m pip list --format=freeze | grep -iE '^(anthropic|openai|httpx|jupyter[-_]server|jupyterlab|pydantic|ipykernel)=='
exec bash scripts/checks.sh "$@"
