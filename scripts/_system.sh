# Sourced by the test scripts: installs the Debian packages the tests drive for real when they
# are missing: Chromium for the browser tests (never a browser download), bubblewrap for the
# workspace sandbox tests.
_need=()
[ -x /usr/bin/chromium ] || _need+=(chromium)
command -v bwrap >/dev/null || _need+=(bubblewrap)
if [ "${#_need[@]}" -gt 0 ]; then
  _sudo=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then _sudo="sudo"; fi
  $_sudo apt-get update -qq && $_sudo apt-get install -y -qq "${_need[@]}"
fi
