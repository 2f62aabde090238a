#!/usr/bin/env bash
# Data-parallel training on the host it runs on, and the scaling model's inputs.
#
#   bash bench/distributed/run.sh
#
# 1. bench_allreduce under mpirun -np 2: MPI_Allreduce and the rank-ordered gradient sum over
#    message sizes (latency, bandwidth).
# 2. The same training run (siamese MLP, fixed global batch) as 1 process x 1 thread, 1 process x
#    2 threads and 2 processes x 1 thread, each with its --report (samples_per_s, step times,
#    exposed communication per step).
# 3. model.py: the two-process point measured against the model's prediction, and the model's
#    step time and efficiency for 2..64 nodes.
# Writes into bench/results/distributed/ (JSON, and summary.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
rematch=${REMATCH:-build/cli/rematch}
bench=${BENCH:-build/bench/distributed/bench_allreduce}
[ -x "$rematch" ] && [ -x "$bench" ] || { echo "build first: bash scripts/build.sh" >&2; exit 1; }
out=bench/results/distributed
mkdir -p "$out"
mpirun=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
model=(--model siamese-mlp --depth "${DEPTH:-8}" --width "${WIDTH:-512}" --batch "${BATCH:-512}"
       --memory 1GiB --steps "${STEPS:-8}" --no-eval --profile-repeats 1 --optimizer sgd)

{
  lscpu | grep 'Model name'
  OMP_NUM_THREADS=1 "${mpirun[@]}" -np 2 "$bench" "$out/allreduce.json"
  OMP_NUM_THREADS=1 "$rematch" train "${model[@]}" --report "$out/r1x1.json" | tail -1
  OMP_NUM_THREADS=2 "$rematch" train "${model[@]}" --report "$out/r1x2.json" | tail -1
  OMP_NUM_THREADS=1 "${mpirun[@]}" -np 2 "$rematch" train "${model[@]}" --report "$out/r2x1.json" | tail -1
  /usr/bin/python3 bench/distributed/model.py "$out"
} | tee "$out/summary.txt"
