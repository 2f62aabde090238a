#!/usr/bin/env bash
# Installs every build, test and demo dependency of rematch from Debian 12's archive (apt-get only).
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libboost-dev libcli11-dev libgtest-dev nlohmann-json3-dev
  libxsmm-dev libopenblas-dev zlib1g-dev openmpi-bin libopenmpi-dev
  dataset-fashion-mnist time python3 python3-pytest
)
# --pytorch: also the PyTorch of the side-by-side benchmark (bench/pytorch/).
if [ "${1:-}" = "--pytorch" ]; then packages+=(python3-torch); fi
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
