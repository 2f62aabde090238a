#!/usr/bin/env bash
# Configures and builds rematch (Release) in build/: libraries, the `rematch` CLI, tests, benches.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j "$(nproc)"
