#!/usr/bin/env bash
# Configures and builds rematch (Release) in build/: libraries, the `rematch` CLI, tests, benches.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j "$(nproc)"
# `import rematch` from any directory: the user's site-packages points at the build tree's package.
site=$(/usr/bin/python3 -m site --user-site)
mkdir -p "$site" && echo "$PWD/build/python" > "$site/rematch.pth"
