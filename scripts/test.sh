#!/usr/bin/env bash
# The test command (README "Test it"): installs the package with its test extras (which builds
# the front end), then runs the front end's type check and vitest suite, ruff, mypy and the
# pytest suite. Works on a fresh machine with Python >= 3.10, pip and Node.js >= 18 with npm.
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests (tests/e2e) drive Debian's Chromium through Playwright; never a browser
# download (docs/architecture.md#testing).
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium
fi
python -m pip install --quiet --disable-pip-version-check -e ".[test]"
(cd js && npm ci && npm run lint && npm test)
ruff check coderchat_ext tests bench
ruff format --check coderchat_ext tests bench
mypy
python -m pytest tests -q -p no:cacheprovider "$@"
