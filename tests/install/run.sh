#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds tests/install/consumer against it, and runs
# the consumer on a graph of examples/. Arguments: build dir, source dir, extra consumer flags.
set -euo pipefail
build=$1 source=$2
shift 2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
quiet() {  # runs "$@", showing its output only when it fails
  "$@" > "$prefix/log" 2>&1 || { cat "$prefix/log"; echo "failed: $*"; exit 1; }
}
quiet cmake --install "$build" --prefix "$prefix/usr"
test -f "$prefix/usr/include/rematch/scheduler/solver.hpp"
quiet cmake -S "$source/tests/install/consumer" -B "$prefix/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix/usr" \
  -DCMAKE_BUILD_TYPE=Release "$@"
quiet cmake --build "$prefix/build"
"$prefix/build/solve_graph" "$source/examples/conv_chain.json" 900
if [ -x "$prefix/build/run_kernel" ]; then "$prefix/build/run_kernel"; fi
