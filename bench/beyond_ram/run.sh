#!/usr/bin/env bash
# Beyond RAM: trains a siamese MLP whose store-all activations need at least 3x the memory the
# process is allowed (RLIMIT_AS, set from outside with prlimit), then shows that the same model
# with --solver store-all fails cleanly under the same limit.
#
#   bash bench/beyond_ram/run.sh                 # the demo (about 5 minutes on 2 cores)
#   SCALE=ram bash bench/beyond_ram/run.sh       # store-all footprint above 24 GiB, 2 steps
#
# Writes into bench/results/beyond_ram[-ram]/: graph.json (the profiled model), rematch.json
# (the training report), time.txt (/usr/bin/time -v), store_all.txt (the refused run), summary.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
rematch=${REMATCH:-build/cli/rematch}
[ -x "$rematch" ] || { echo "build first: bash scripts/build.sh" >&2; exit 1; }

case "${SCALE:-demo}" in
  demo) model=(--model siamese-mlp --depth 48 --width 256 --batch 32768); steps=${STEPS:-6}; out=bench/results/beyond_ram ;;
  ram)  model=(--model siamese-mlp --depth 96 --width 256 --batch 131072 --layers-per-stage 2); steps=${STEPS:-2}; out=bench/results/beyond_ram-ram ;;
  *) echo "SCALE is demo or ram" >&2; exit 1 ;;
esac
mkdir -p "$out"

# What the model needs, measured on this machine.
"$rematch" profile "${model[@]}" -o "$out/graph.json"
read -r store_all least < <("$rematch" info "$out/graph.json" --format json |
  /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print(int(j["store_all_peak"]), int(j["min_memory"]))')
inputs=$(/usr/bin/python3 -c "import json; g=json.load(open('$out/graph.json'))['join']; print(int(sum(b['cw'][0] for b in g['branches'])))")

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
  --report "$out/rematch.json" || status=$?
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
  echo "process limit       $limit bytes ($(numfmt --to=iec "$limit")), ratio $(/usr/bin/python3 -c "print(f'{$store_all/$limit:.2f}')")"
  echo "activation budget   $budget bytes ($(numfmt --to=iec "$budget"))"
  echo "peak RSS            $rss bytes ($(numfmt --to=iec "$rss"))"
  /usr/bin/python3 -c "import json; r=json.load(open('$out/rematch.json')); print(f\"loss                {r['first_loss']:.5f} -> {r['last_loss']:.5f} over {r['steps']} steps; arena peak {r['arena_peak']} bytes; {r['samples_per_s']:.0f} pairs/s, {r['gflops']:.1f} GFLOP/s; test ROC AUC {r['test_metric']}\")"
  echo "store-all           exit status $store_all_status: $(tail -1 "$out/store_all.txt")"
} | tee "$out/summary.txt"
[ "$store_all_status" -ne 0 ] && [ "$store_all_status" -lt 128 ] || { echo "store-all did not fail cleanly" >&2; exit 1; }
