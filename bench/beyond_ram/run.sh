#!/usr/bin/env bash
# Beyond RAM.
#
#   bash bench/beyond_ram/run.sh            # demo: a siamese MLP whose store-all activations need
#                                           # 3x the memory the process may use (prlimit --as),
#                                           # trained; then store-all under the same limit must
#                                           # fail cleanly (about 5 minutes on an idle machine)
#   SCALE=ram bash bench/beyond_ram/run.sh  # a siamese MLP whose store-all activations exceed
#                                           # a 24 GiB host's memory, trained for 2 steps in 4 GiB;
#                                           # its summary rates the steady-state step (the median
#                                           # of the steps after the first) against the fp32 peak
#                                           # measured right after it (bench_step --peak-only,
#                                           # OMP_NUM_THREADS or all CPUs)
#
# Writes into bench/results/beyond_ram[-ram]/: rematch.json (the training report), time.txt
# (/usr/bin/time -v), train.txt (its output), and for the demo graph.json (the profiled model)
# and store_all.txt (the refused run); summary.txt sums it up.
set -euo pipefail
cd "$(dirname "$0")/../.."
rematch=${REMATCH:-build/cli/rematch}
[ -x "$rematch" ] || { echo "build first: bash scripts/build.sh" >&2; exit 1; }
json() { /usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }

if [ "${SCALE:-demo}" = ram ]; then
  model=(--model siamese-mlp --depth 96 --width 128 --batch 262144 --layers-per-stage 2)
  out=bench/results/beyond_ram-ram
  mkdir -p "$out"
  /usr/bin/time -v -o "$out/time.txt" "$rematch" train "${model[@]}" --memory "${BUDGET:-4GiB}" \
    --steps "${STEPS:-2}" --eval-batches 1 --profile-repeats 1 --report "$out/rematch.json" | tee "$out/train.txt"
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2 * 1024}' "$out/time.txt")
  threads=${OMP_NUM_THREADS:-$(nproc)}
  peak=$(build/bench/runtime/bench_step --peak-only --threads "$threads" | /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['peak_gflops'])")
  {
    echo "model               ${model[*]}"
    echo "store-all footprint $(json "$out/rematch.json" 'int(r["store_all_peak"])') bytes, physical RAM $(awk '/MemTotal/ {print $2 * 1024}' /proc/meminfo) bytes"
    echo "activation budget   $(json "$out/rematch.json" 'r["budget"]') bytes; arena peak $(json "$out/rematch.json" 'r["arena_peak"]'); peak RSS $rss bytes"
    echo "steps               $(json "$out/rematch.json" 'r["steps"]'), loss $(json "$out/rematch.json" 'r["first_loss"]') -> $(json "$out/rematch.json" 'r["last_loss"]'), step times $(json "$out/rematch.json" 'r["step_seconds"]') s"
    # The steady state leaves out the first step (the warm-up: kernels generated, arena pages
    # first touched) and takes the median of the rest, so that one step in a slow stretch of a
    # shared host does not decide it; the fastest and slowest are printed beside it. The report's
    # rates are per mean step, so they are rescaled to the steady step's time. "Useful" FLOPs
    # exclude recomputation; "executed" ones include the schedule's recomputed forwards.
    /usr/bin/python3 - "$out/rematch.json" "$peak" "$threads" <<'EOF'
import json, statistics, sys
r, peak, threads = json.load(open(sys.argv[1])), float(sys.argv[2]), sys.argv[3]
times = r["step_seconds"]
steady = times[1:] or times
step = statistics.median(steady)
mean = sum(times) / len(times)  # the report's rates are per mean step
useful, executed = r["gflops"] * mean / step, r["executed_gflops"] * mean / step
print(f"steady-state step  {step:.2f} s (median of the {len(steady)} step(s) after the first; "
      f"fastest {min(steady):.2f}, slowest {max(steady):.2f}), {useful:.1f} GFLOP/s, "
      f"{100 * useful / peak:.1f}% of the {peak:.1f} GFLOP/s fp32 peak ({threads} threads)")
print(f"executed rate       {executed:.1f} GFLOP/s executed, {100 * executed / peak:.1f}% of the peak "
      f"(recomputation adds {100 * (r['executed_gflops'] / r['gflops'] - 1):.1f}% to the useful FLOPs)")
EOF
  } | tee "$out/summary.txt"
  exit 0
fi

model=(--model siamese-mlp --depth 48 --width 256 --batch 32768)
steps=${STEPS:-6}
out=bench/results/beyond_ram
mkdir -p "$out"

# What the model needs, measured on the host that runs this script.
"$rematch" profile "${model[@]}" -o "$out/graph.json"
"$rematch" info "$out/graph.json" --format json > "$out/info.json"
store_all=$(json "$out/info.json" 'int(r["store_all_peak"])')
least=$(json "$out/info.json" 'int(r["min_memory"])')
inputs=$(json "$out/graph.json" 'int(sum(b["cw"][0] for b in r["join"]["branches"]))')

# The process may use a third of store-all's activations, all included (code, dataset, weights,
# optimizer state, activations). What is left after an allowance for the rest is the activation
# budget the schedule must fit: the next batch being sampled (the size of the inputs) plus 320 MiB
# for the dataset, weights, gradients, optimizer state and code.
limit=$((store_all / 3))
allowance=${ALLOWANCE:-$((inputs + (320 << 20)))}
budget=$((limit - allowance))
if [ "$budget" -lt "$least" ]; then
  echo "limit $limit leaves $budget bytes for activations, below the least feasible $least" >&2
  exit 1
fi
echo "store-all activations $store_all bytes; process limit $limit bytes (1/3); activation budget $budget bytes (least feasible $least)"

status=0
prlimit --as="$limit" /usr/bin/time -v -o "$out/time.txt" \
  "$rematch" train "${model[@]}" --memory "$budget" --steps "$steps" --eval-batches 2 \
  --report "$out/rematch.json" | tee "$out/train.txt" || status=$?
[ "$status" -eq 0 ] || { echo "rematch train failed under the limit (status $status)" >&2; exit 1; }

# The same model storing everything, under the same limit: must fail cleanly, not crash.
set +e
prlimit --as="$limit" "$rematch" train "${model[@]}" --solver store-all --memory "$store_all" \
  --steps 1 --no-eval > "$out/store_all.txt" 2>&1
store_all_status=$?
set -e

rss=$(awk -F': ' '/Maximum resident set size/ {print $2 * 1024}' "$out/time.txt")
{
  echo "model               ${model[*]}"
  echo "store-all footprint $store_all bytes ($(numfmt --to=iec "$store_all"))"
  echo "process limit       $limit bytes ($(numfmt --to=iec "$limit")), store-all / limit = $(json "$out/info.json" "f'{$store_all / $limit:.2f}'")"
  echo "activation budget   $budget bytes ($(numfmt --to=iec "$budget"))"
  echo "peak RSS            $rss bytes ($(numfmt --to=iec "$rss"))"
  json "$out/rematch.json" "f\"loss                {r['first_loss']:.5f} -> {r['last_loss']:.5f} over {r['steps']} steps; arena peak {r['arena_peak']} bytes; {r['samples_per_s']:.0f} pairs/s, {r['gflops']:.1f} GFLOP/s; test ROC AUC {r['test_metric']:.3f}\""
  echo "store-all           exit status $store_all_status: $(tail -1 "$out/store_all.txt")"
} | tee "$out/summary.txt"
[ "$store_all_status" -ne 0 ] && [ "$store_all_status" -lt 128 ] || { echo "store-all did not fail cleanly" >&2; exit 1; }
