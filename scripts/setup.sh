#!/usr/bin/env bash
# Installs every build, test and demo dependency of rematch from Debian 12's archive (apt-get only).
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libboost-dev libcli11-dev libgtest-dev nlohmann-json3-dev
  libxsmm-dev libopenblas-dev zlib1g-dev openmpi-bin libopenmpi-dev
  dataset-fashion-mnist time python3
  pybind11-dev python3-pybind11 python3-dev python3-numpy python3-torch python3-pytest
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
