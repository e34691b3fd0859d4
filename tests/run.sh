#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian/Ubuntu machine (apt packages, then .venv through
# install.sh), lint, and run the tests. Usage: bash tests/run.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
# fluidsynth and the two banks render training-format data, stk (and faketime, to seed it) the physical models, espeak-ng speaks the no-instrument clips; chromium is the browser test's browser, and libatomic1 what Playwright's bundled Node.js driver needs to start (a minimal Debian 12 lacks it).
APT_PACKAGES="fluidsynth fluid-soundfont-gm musescore-general-soundfont espeak-ng stk faketime chromium libatomic1"
missing=$(for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
bash install.sh dev
PY="${IRMAS_VENV:-.venv}/bin/python"
"$PY" -m ruff check .
"$PY" -m pytest "$@"
