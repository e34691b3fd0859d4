#!/usr/bin/env bash
# Create the virtual environment .venv and install the app into it: torch's CPU build, then requirements.txt.
# Works on a stock Debian/Ubuntu with only python3 (PEP 668 forbids pip on the system Python): Debian's
# python3-venv is installed with apt when venv is missing.
# Usage: bash install.sh [dev]          dev: also what the tests, lint and benchmarks need (requirements-dev.txt)
# GPU machines: TORCH_INDEX=https://download.pytorch.org/whl/cu128 bash install.sh   (any CUDA index of torch 2.13.0)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${IRMAS_VENV:-.venv}"
TORCH_INDEX="${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"

apt_install() {
  local missing
  missing=$(for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  [ -z "$missing" ] && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
}

if [ ! -x "$VENV/bin/python" ]; then
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    apt_install python3-venv
    python3 -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
# torch alone from its own index (no deps: those come from PyPI below, so the index is asked about one package).
"$PY" -m pip install -q --no-deps --index-url "$TORCH_INDEX" "$(grep -E '^torch==' requirements.txt)"
if [ "${1:-}" = "dev" ]; then
  "$PY" -m pip install -q -r requirements-dev.txt
else
  "$PY" -m pip install -q -r requirements.txt
fi
echo "Installed into $VENV: run the app with $VENV/bin/python app.py"
