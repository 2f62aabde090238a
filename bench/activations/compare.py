#!/usr/bin/python3
"""fp32 against bf16 activations (`rematch train --activations`), side by side.

    /usr/bin/python3 bench/activations/compare.py [--steps 200] [--fraction 0.5] [-o out.json]

Trains the same siamese MLP on Fashion-MNIST (same weights, same batches) with fp32 and with bf16
activations, at one budget below fp32's store-all peak (`--fraction` of it), and prints:
  - the loss curves' largest relative difference (means over 10 and over 20 steps), the mean
    relative difference step by step (absolute and signed) and the test ROC AUCs;
  - per precision: the store-all peak, the plan's predicted recompute overhead at the budget,
    and the measured one: the step time at the budget over the store-all step time, each the
    least over `--repeats` short runs (taken in turns) of its median step time.
Step times are wall times: on a shared machine they are noisy (the least of several medians
filters out most of it), the predicted figures are not. Writes the figures as JSON (`-o`).
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
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--timing-steps", type=int, default=12, help="steps of each timing run")
    p.add_argument("--repeats", type=int, default=3, help="timing runs per precision and schedule")
    p.add_argument("--fraction", type=float, default=0.7,
                   help="budget: this share of fp32's store-all peak (0.7: above bf16's store-all peak)")
    p.add_argument("-o", "--output", help="write the figures here (JSON)")
    a = p.parse_args()
    if not os.access(a.rematch, os.X_OK):
        sys.exit(f"{a.rematch}: not built (bash scripts/build.sh)")
    if not 0 < a.fraction < 1:
        sys.exit("--fraction must be in (0, 1)")
    model = ["--model", "siamese-mlp", "--depth", str(a.depth), "--width", str(a.width),
             "--batch", str(a.batch), "--fashion-mnist", a.fashion_mnist]

    def timed(precision, schedule):
        return run(a.rematch, model, ["--activations", precision, *schedule, "--steps", str(a.timing_steps),
                                      "--no-eval"])

    store_all_schedule = ["--solver", "store-all", "--memory", "64GiB"]
    fp32_store_all = timed("fp32", store_all_schedule)
    budget = int(a.fraction * fp32_store_all["store_all_peak"])
    schedules = {"store_all": store_all_schedule, "budget": ["--memory", str(budget)]}
    seconds = {(p, k): [] for p in ("fp32", "bf16") for k in schedules}
    for _ in range(a.repeats):
        for precision in ("fp32", "bf16"):
            for kind, schedule in schedules.items():
                seconds[(precision, kind)].append(steady_median(timed(precision, schedule)["step_seconds"]))
    budgeted = {precision: run(a.rematch, model, ["--activations", precision, "--memory", str(budget),
                                                  "--steps", str(a.steps)])
                for precision in ("fp32", "bf16")}

    figures = {"model": " ".join(model[:8]), "budget": budget, "steps": a.steps,
               "test_auc": {k: r["test_metric"] for k, r in budgeted.items()},
               "losses": {k: r["losses"] for k, r in budgeted.items()}}
    for window in (10, 20):
        fp32_means = window_means(budgeted["fp32"]["losses"], window)
        bf16_means = window_means(budgeted["bf16"]["losses"], window)
        figures[f"loss_curve_max_rel_diff_{window}"] = max(abs(h - f) / abs(f) for f, h in zip(fp32_means, bf16_means))
    figures["loss_mean_rel_diff"] = statistics.fmean(
        abs(h - f) / abs(f) for f, h in zip(budgeted["fp32"]["losses"], budgeted["bf16"]["losses"]))
    # Signed: a systematic effect of the rounding (bf16 training worse or better) shows here, the
    # two runs' drifting apart step by step averages out.
    figures["loss_mean_signed_rel_diff"] = statistics.fmean(
        (h - f) / abs(f) for f, h in zip(budgeted["fp32"]["losses"], budgeted["bf16"]["losses"]))
    figures["test_auc_diff"] = abs(figures["test_auc"]["bf16"] - figures["test_auc"]["fp32"])
    print(f"model      {' '.join(model[:8])}, budget {budget} bytes "
          f"({a.fraction:.0%} of fp32's store-all peak)")
    print(f"{'':10} {'store-all peak':>15} {'predicted peak':>15} {'predicted ovh':>14} "
          f"{'measured ovh':>13} {'step s':>8} {'store-all s':>12} {'test AUC':>9}")
    for precision in ("fp32", "bf16"):
        r = budgeted[precision]
        step, base = min(seconds[(precision, "budget")]), min(seconds[(precision, "store_all")])
        measured = 100 * (step / base - 1)
        figures[precision] = {"store_all_peak": r["store_all_peak"], "predicted_peak": r["predicted_peak"],
                              "arena_peak": r["arena_peak"], "solver": r["solver"],
                              "predicted_overhead_pct": r["predicted_overhead_pct"],
                              "measured_overhead_pct": measured, "step_seconds": step,
                              "store_all_step_seconds": base,
                              "first_loss": r["first_loss"], "last_loss": r["last_loss"],
                              "test_auc": r["test_metric"]}
        print(f"{precision:10} {r['store_all_peak']:>15.0f} {r['predicted_peak']:>15.0f} "
              f"{r['predicted_overhead_pct']:>13.1f}% {measured:>12.1f}% {step:>8.4f} {base:>12.4f} "
              f"{r['test_metric']:>9.4f}")
    print(f"loss curve largest relative difference: {100 * figures['loss_curve_max_rel_diff_10']:.2f} % "
          f"(10-step means), {100 * figures['loss_curve_max_rel_diff_20']:.2f} % (20-step means), "
          f"{100 * figures['loss_mean_rel_diff']:.2f} % step by step on average "
          f"(signed: bf16 {100 * figures['loss_mean_signed_rel_diff']:+.2f} %); "
          f"test AUC difference {figures['test_auc_diff']:.4f}")
    if a.output:
        tmp = a.output + ".tmp"
        with open(tmp, "w") as f:
            json.dump(figures, f, indent=1)
        os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
