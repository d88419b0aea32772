#!/usr/bin/env bash
# Makes sure the system packages perkrec builds with are present (Debian/Ubuntu).
# Installs what is missing with apt-get when running as root; otherwise names it and fails.
set -euo pipefail

PYTHON=${PYTHON:-python3}
packages=(g++ libeigen3-dev nlohmann-json3-dev libgtest-dev clang libclang-rt-14-dev clang-format-14 pkgconf)
# Extra packages named on the command line (the tests add a headless browser: chromium).
packages+=("$@")

# A Python that can create virtual environments and build extensions (python3-venv,
# python3-dev on Debian's own Python; pyenv or python.org builds have both).
if ! "$PYTHON" -c "import venv, ensurepip" >/dev/null 2>&1; then
  packages+=(python3-venv)
fi
if ! "$PYTHON" -c "import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" >/dev/null 2>&1; then
  packages+=(python3-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "perkrec needs these packages (or their equivalents): ${missing[*]}" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "perkrec needs these Debian packages; install them as root and run make again:" >&2
  echo "  apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
