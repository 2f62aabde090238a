#!/usr/bin/python3
"""fp32 against bf16 activations (`rematch train --activations`), side by side.

    /usr/bin/python3 bench/activations/compare.py [--steps 200] [--fraction 0.5] [-o out.json]

Trains the same siamese MLP on Fashion-MNIST (same weights, same batches) with fp32 and with bf16
activations, at one budget below fp32's store-all peak (`--fraction` of it), and prints:
  - the loss curves' largest relative difference (10-step means) and the test ROC AUCs;
  - per precision: the store-all peak, the plan's predicted recompute overhead at the budget,
    and the measured one (median step time at the budget over the median store-all step time,
    from a short store-all run of the same model).
Step times are wall times: on a shared machine they are noisy, the predicted figures are not.
Writes the figures as JSON (`-o`).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile


def run(rematch, common, extra):
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        cmd = [rematch, "train", *common, *extra, "--report", report]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.strip() or done.stdout[-500:]}")
        with open(report) as f:
            r = json.load(f)
    r["losses"] = [float(m.group(1)) for m in re.finditer(r"^step \d+/\d+  loss (\S+)", done.stdout, re.M)]
    return r


def window_means(values, width):
    return [statistics.fmean(values[i:i + width]) for i in range(0, len(values) - width + 1, width)]


def steady_median(seconds):
    return statistics.median(seconds[2:] if len(seconds) > 4 else seconds)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rematch", default="build/cli/rematch")
    p.add_argument("--fashion-mnist", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--store-all-steps", type=int, default=20, help="steps of the store-all timing runs")
    p.add_argument("--fraction", type=float, default=0.5, help="budget: this share of fp32's store-all peak")
    p.add_argument("--window", type=int, default=10, help="steps per mean when comparing loss curves")
    p.add_argument("-o", "--output", help="write the figures here (JSON)")
    a = p.parse_args()
    if not os.access(a.rematch, os.X_OK):
        sys.exit(f"{a.rematch}: not built (bash scripts/build.sh)")
    if not 0 < a.fraction < 1:
        sys.exit("--fraction must be in (0, 1)")
    model = ["--model", "siamese-mlp", "--depth", str(a.depth), "--width", str(a.width),
             "--batch", str(a.batch), "--fashion-mnist", a.fashion_mnist]

    store_all = {}
    for precision in ("fp32", "bf16"):
        store_all[precision] = run(a.rematch, model, ["--activations", precision, "--solver", "store-all",
                                                      "--memory", "64GiB", "--steps", str(a.store_all_steps),
                                                      "--no-eval"])
    budget = int(a.fraction * store_all["fp32"]["store_all_peak"])
    budgeted = {precision: run(a.rematch, model, ["--activations", precision, "--memory", str(budget),
                                                  "--steps", str(a.steps)])
                for precision in ("fp32", "bf16")}

    fp32_means = window_means(budgeted["fp32"]["losses"], a.window)
    bf16_means = window_means(budgeted["bf16"]["losses"], a.window)
    loss_diff = max(abs(h - f) / abs(f) for f, h in zip(fp32_means, bf16_means))
    figures = {"model": " ".join(model[:8]), "budget": budget, "steps": a.steps, "window": a.window,
               "loss_curve_max_rel_diff": loss_diff,
               "test_auc": {k: r["test_metric"] for k, r in budgeted.items()},
               "loss_window_means": {"fp32": fp32_means, "bf16": bf16_means}}
    figures["test_auc_diff"] = abs(figures["test_auc"]["bf16"] - figures["test_auc"]["fp32"])
    print(f"model      {' '.join(model[:8])}, budget {budget} bytes "
          f"({a.fraction:.0%} of fp32's store-all peak)")
    print(f"{'':10} {'store-all peak':>15} {'predicted peak':>15} {'predicted ovh':>14} "
          f"{'measured ovh':>13} {'step s':>8} {'test AUC':>9}")
    for precision in ("fp32", "bf16"):
        r, s = budgeted[precision], store_all[precision]
        measured = 100 * (steady_median(r["step_seconds"]) / steady_median(s["step_seconds"]) - 1)
        figures[precision] = {"store_all_peak": r["store_all_peak"], "predicted_peak": r["predicted_peak"],
                              "arena_peak": r["arena_peak"], "solver": r["solver"],
                              "predicted_overhead_pct": r["predicted_overhead_pct"],
                              "measured_overhead_pct": measured,
                              "step_seconds_median": steady_median(r["step_seconds"]),
                              "store_all_step_seconds_median": steady_median(s["step_seconds"]),
                              "first_loss": r["first_loss"], "last_loss": r["last_loss"],
                              "test_auc": r["test_metric"]}
        print(f"{precision:10} {r['store_all_peak']:>15.0f} {r['predicted_peak']:>15.0f} "
              f"{r['predicted_overhead_pct']:>13.1f}% {measured:>12.1f}% "
              f"{steady_median(r['step_seconds']):>8.3f} {r['test_metric']:>9.4f}")
    print(f"loss curve largest relative difference ({a.window}-step means): {100 * loss_diff:.2f} %; "
          f"test AUC difference {figures['test_auc_diff']:.4f}")
    if a.output:
        tmp = a.output + ".tmp"
        with open(tmp, "w") as f:
            json.dump(figures, f, indent=1)
        os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
