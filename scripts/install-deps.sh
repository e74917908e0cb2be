#!/usr/bin/env bash
# Installs the Debian packages recmap needs, only those missing. Runs
# apt-get update first, and only when something has to be installed.
set -euo pipefail
PACKAGES=(
  g++ cmake ninja-build make pkg-config git
  libabsl-dev libboost-dev liblmdb-dev catch2 libxxhash-dev libcli11-dev
  clang libclang-rt-14-dev llvm
  gnuplot-nox
  python3-dev pybind11-dev python3-numpy python3-pytest python3-lmdb
  nats-server libnats-dev
)
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
