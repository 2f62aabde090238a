#!/usr/bin/python3
"""What the process-wide runtime settings do to a CPU training step: plain PyTorch and rematch.torch
(a store-all budget: no recomputation) on bench_schedules.py's siamese MLP, in one fresh process
per setting, their steps in turns. Per step: wall time, the process's CPU time (all threads; a
spinning thread counts), minor page faults and system (kernel) time, medians over the steps.

Settings: the system's defaults, sleeping OpenMP workers, sleeping OpenMP and OpenBLAS workers,
malloc keeping freed memory, and all of them (bench_schedules.py's default --runtime-env).

    /usr/bin/python3 bench/pytorch/runtime_settings.py --steps 10
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
import bench_schedules as bench  # noqa: E402

SETTINGS = [("system defaults", ""), ("passive OpenMP", "OMP_WAIT_POLICY=PASSIVE"),
            ("+ OpenBLAS sleeps", "OMP_WAIT_POLICY=PASSIVE,OPENBLAS_THREAD_TIMEOUT=4"),
            ("malloc keeps memory", "MALLOC_MMAP_THRESHOLD_=33554432,MALLOC_TRIM_THRESHOLD_=1073741824"),
            ("all", bench.RUNTIME_ENV)]


def measure(a):
    """In this process: plain and rematch store-all steps in turns; prints their medians as JSON."""
    import torch
    torch.set_num_threads(a.threads)
    model_args = bench.parse_args(["--depth", str(a.depth), "--width", str(a.width), "--batch", str(a.batch),
                                   "--segments", "1"])
    encoder, data = bench.build(model_args, torch)
    configs = {"plain": {"kind": "plain"}, "rematch = plain": {"kind": "rematch", "budget": 1 << 50}}
    steps = {name: bench.make_step(model_args, torch, encoder, data, c)[0] for name, c in configs.items()}
    opt = torch.optim.SGD(encoder.parameters(), lr=0.01, momentum=0.9)
    samples = {name: [] for name in steps}
    for n in range(a.warmup + a.steps):
        for name, step in steps.items():
            before, cpu, start = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
            bench.timed_step(opt, step)
            wall, cpu, after = time.perf_counter() - start, time.process_time() - cpu, resource.getrusage(resource.RUSAGE_SELF)
            if n >= a.warmup:
                samples[name].append((wall, cpu, after.ru_minflt - before.ru_minflt, after.ru_stime - before.ru_stime))
    out = {}
    for name, rows in samples.items():
        columns = list(zip(*rows))
        out[name] = {"wall_s": statistics.median(columns[0]), "wall_s_min": min(columns[0]),
                     "wall_s_max": max(columns[0]), "cpu_s": statistics.median(columns[1]),
                     "minor_faults": statistics.median(columns[2]), "system_s": statistics.median(columns[3])}
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--depth", type=int, default=16)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--batch", type=int, default=256, help="pairs per step")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--json", metavar="FILE", help="write every result as one JSON object")
    p.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # in this process
    a = p.parse_args()
    if a.measure:
        measure(a)
        return
    argv = [sys.executable, os.path.abspath(__file__), "--measure", "--depth", str(a.depth), "--width",
            str(a.width), "--batch", str(a.batch), "--steps", str(a.steps), "--warmup", str(a.warmup),
            "--threads", str(a.threads)]
    results = []
    print("siamese MLP %d x %d, batch %d pairs; %s, %d threads; medians of %d steps per fresh process" % (
        a.depth, a.width, a.batch, bench.cpu_model(), a.threads, a.steps))
    print("%-20s %-16s %9s %15s %8s %13s %10s" % ("setting", "config", "wall ms", "wall range ms", "CPU ms",
                                                    "faults/step", "kernel ms"))
    for label, settings in SETTINGS:
        model_args = bench.parse_args(["--threads", str(a.threads), "--runtime-env", settings])
        env = bench.runtime_env(model_args)
        for name in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
            if name not in model_args.env:
                env.pop(name, None)  # the system's default, whatever the caller's environment says
        out = subprocess.run(argv, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            sys.exit("setting %r failed:\n%s" % (label, out.stderr))
        measured = json.loads(out.stdout.strip().splitlines()[-1])
        for config, m in measured.items():
            print("%-20s %-16s %9.1f %15s %8.1f %13.0f %10.1f" % (
                label, config, 1e3 * m["wall_s"], "%.0f-%.0f" % (1e3 * m["wall_s_min"], 1e3 * m["wall_s_max"]),
                1e3 * m["cpu_s"], m["minor_faults"], 1e3 * m["system_s"]))
            results.append(dict(m, setting=label, runtime_env=model_args.env, config=config))
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"setup": {"cpu": bench.cpu_model(), "threads": a.threads, "depth": a.depth, "width": a.width,
                                 "batch": a.batch, "steps": a.steps, "environment": bench.recorded_env()},
                       "results": results}, f, indent=1)
            f.write("\n")
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
