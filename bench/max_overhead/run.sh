#!/usr/bin/env bash
# --max-overhead: the predicted recompute overhead of the budget it picks against the measured one.
#
#   bash bench/max_overhead/run.sh          # siamese MLP depth 8, width 256, batch 512; 10 %
#   BOUND=5% ROUNDS=3 STEPS=20 bash bench/max_overhead/run.sh
#
# Alternates ROUNDS times a run at the budget `--max-overhead BOUND` picks and a store-all run
# (budget 2 GiB, above the model's store-all peak), STEPS steps each, so that load on the machine
# falls on both alike. Measured overhead: the ratio of the median step times (first step left out:
# it warms the caches) and of the fastest steps. Writes bench/results/max_overhead/: each run's
# output and report, and summary.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
rematch=${REMATCH:-build/cli/rematch}
[ -x "$rematch" ] || { echo "build first: bash scripts/build.sh" >&2; exit 1; }
model=(--model siamese-mlp --depth 8 --width 256 --batch 512 --steps "${STEPS:-12}" --no-eval)
out=bench/results/max_overhead
mkdir -p "$out"
for r in $(seq 1 "${ROUNDS:-2}"); do
  "$rematch" train "${model[@]}" --max-overhead "${BOUND:-10%}" --report "$out/bound-$r.json" > "$out/bound-$r.txt"
  "$rematch" train "${model[@]}" --memory 2GiB --report "$out/store-all-$r.json" > "$out/store-all-$r.txt"
done
/usr/bin/python3 - "$out" "${ROUNDS:-2}" <<'PY' | tee "$out/summary.txt"
import json, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
for r in range(1, rounds + 1):
    b = json.load(open(f"{out}/bound-{r}.json"))
    s = json.load(open(f"{out}/store-all-{r}.json"))
    curve = re.search(r"curve: predicted overhead ([0-9.]+) %", open(f"{out}/bound-{r}.txt").read()).group(1)
    bs, ss = b["step_seconds"][1:], s["step_seconds"][1:]
    print(f"round {r}: budget {b['budget']} B (store-all peak {int(b['store_all_peak'])} B); predicted overhead: "
          f"curve {float(curve):.2f} %, plan {b['predicted_overhead_pct']:.2f} %; measured: median steps "
          f"{100 * (statistics.median(bs) / statistics.median(ss) - 1):.1f} %, fastest steps "
          f"{100 * (min(bs) / min(ss) - 1):.1f} % ({statistics.median(bs):.3f} vs {statistics.median(ss):.3f} s)")
PY
