#!/usr/bin/python3
"""Siamese MLP training steps in PyTorch: plain autograd, checkpoint_sequential, rematch.torch.

One model: a shared encoder of `depth` blocks [Linear(width) + ReLU] (784 inputs; or blocks of the
given --widths, a heterogeneous encoder, reported as such), both branches, contrastive loss, SGD.
Configurations:
  plain          plain autograd (stores every activation);
  checkpoint:S   torch.utils.checkpoint.checkpoint_sequential with S segments per branch;
  rematch@L      rematch.torch.Join at budget L bytes: at plain's level (the executor's own cost),
                 at each checkpoint:S memory level (the peak of rematch's model of
                 checkpoint_sequential, solver segments:S, on the profiled graph) and at fractions
                 of it down to the least budget.
Memory: each configuration runs alone in --rounds fresh processes (the rounds one after another):
the activation memory it is designed for (the executor's count for rematch, the modelled peak for
the others) and the process's peak RSS during the training steps, with its growth over the RSS
before them (model, data, imports; the heap's free memory is returned to the system first, so
that memory the plan freed is not reused unseen); also its step time alone (the median over the
rounds).
Time: then one process runs every configuration's steps in turns, --steps-per-round consecutive
steps of each per round (their median is the round's step: the steady step of training that
configuration, without the first step after a switch or a step a moment's disturbance hit), in a
shuffled order with checkpoint:S and rematch at its level side by side, for --paced-rounds rounds;
a configuration's overhead in a round is its step over plain's step of the same round (paced: a
change of the machine's speed falls on both sides of each ratio, which step times of separate
processes on a shared host do not give), reported as the median and quartiles over the rounds, and
as the extra milliseconds over plain's step beside the ones the profile predicts (the overheads'
baselines differ: a measured step also has the optimizer, the loss and Python around the stages).
Beside it, the overhead the profiled graph predicts (the simulated makespan of the configuration's
schedule over store-all's), and the verdict the comparison is for: at each memory level checkpoint_sequential reaches, is rematch's paced overhead
lower? (And is rematch at plain's level, which recomputes nothing, dearer than plain: the
executor's own cost?) Per round, the difference of the two overheads; its median with a 95% distribution-free
confidence interval (order statistics, a sign test): "lower" or "higher" only when the interval
excludes zero, else "not distinguishable". The same again on the steps' CPU time (the process's,
all threads), which other processes taking the cores move less.

Every process runs with the same runtime settings (--runtime-env, printed and written to the
JSON): by default OpenMP and OpenBLAS threads that sleep rather than spin while they wait (torch's
OpenMP workers and OpenBLAS's own run side by side, and spinning ones take cores from the GEMMs)
and a glibc malloc that keeps freed memory (by default it returns large freed blocks to the
system, and every step page-faults its activations in again). The script re-executes itself under them.

    /usr/bin/python3 bench/pytorch/bench_schedules.py --json out.json
"""
import argparse
import ctypes
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time

IMAGE_PIXELS = 784
# OpenMP's and OpenBLAS's idle workers sleep (OpenBLAS's after 2^4 cycles instead of 2^28 of
# sched_yield); malloc keeps freed blocks up to 32 MiB in its heap (no mmap per tensor) and trims
# the heap's top only past 1 GiB free.
RUNTIME_ENV = ("OMP_WAIT_POLICY=PASSIVE,OPENBLAS_THREAD_TIMEOUT=4,"
               "MALLOC_MMAP_THRESHOLD_=33554432,MALLOC_TRIM_THRESHOLD_=1073741824")
# Set in the environment of every process: which settings a run had (recorded in the JSON).
RUNTIME_PREFIXES = ("OMP_", "GOMP_", "OPENBLAS_", "MKL_", "MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--depth", type=int, default=16)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--widths", default="",
                   help="the blocks' widths, comma-separated, for an encoder of layers of different widths "
                        "(instead of --depth x --width)")
    p.add_argument("--batch", type=int, default=256, help="pairs per step")
    p.add_argument("--segments", default="2,4,8", help="checkpoint_sequential segment counts")
    p.add_argument("--fractions", default="0.75,0.5", help="rematch budgets below each level, as fractions of it")
    p.add_argument("--steps", type=int, default=8, help="timed steps per fresh process (their median is taken)")
    p.add_argument("--rounds", type=int, default=1, help="fresh processes per configuration (the median is reported)")
    p.add_argument("--paced-rounds", type=int, default=60,
                   help="rounds of the paced run (--steps-per-round steps of every configuration each)")
    p.add_argument("--steps-per-round", type=int, default=3,
                   help="consecutive steps of a configuration in each paced round (their median is the round's)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--runtime-env", default=RUNTIME_ENV,
                   help="NAME=VALUE,... set for every process (default %(default)s; '' for the system's defaults)")
    p.add_argument("--seed", type=int, default=0, help="of the paced run's order of configurations")
    p.add_argument("--json", metavar="FILE", help="write every result as one JSON object")
    p.add_argument("--child", help=argparse.SUPPRESS)  # one configuration, in this process
    p.add_argument("--paced", help=argparse.SUPPRESS)  # every configuration, steps in turns, in this process
    a = p.parse_args(argv)
    for name in ("depth", "width", "batch", "steps", "rounds", "threads", "steps_per_round"):
        if getattr(a, name) < 1:
            p.error("--%s must be positive" % name.replace("_", "-"))
    if a.paced_rounds < 6:
        p.error("--paced-rounds must be at least 6 (a 95%% interval of the median needs 6 rounds)")
    a.layer_widths = [int(w) for w in a.widths.split(",") if w] or [a.width] * a.depth
    if any(w < 1 for w in a.layer_widths):
        p.error("--widths must be positive")
    a.depth = len(a.layer_widths)
    a.segment_counts = [int(s) for s in a.segments.split(",") if s]
    if any(not 1 <= s <= a.depth for s in a.segment_counts):
        p.error("--segments must lie in 1..depth")
    a.fraction_list = [float(f) for f in a.fractions.split(",") if f]
    a.env = {}
    for item in filter(None, a.runtime_env.split(",")):
        name, eq, value = item.partition("=")
        if not eq or not name:
            p.error("--runtime-env: %r is not NAME=VALUE" % item)
        a.env[name] = value
    return a


def runtime_env(a):
    """The environment every process of the run has: the thread counts and --runtime-env."""
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads))
    env.update(a.env)
    return env


def recorded_env():
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(RUNTIME_PREFIXES)}


def build(a, torch):
    nn = torch.nn
    torch.manual_seed(0)
    inputs = [IMAGE_PIXELS] + a.layer_widths[:-1]
    encoder = nn.Sequential(*[nn.Sequential(nn.Linear(n, w), nn.ReLU()) for n, w in zip(inputs, a.layer_widths)])
    x1, x2 = torch.randn(a.batch, IMAGE_PIXELS), torch.randn(a.batch, IMAGE_PIXELS)
    y = (torch.rand(a.batch) < 0.5).float()
    return encoder, (x1, x2, y)


def contrastive(e1, e2, y, margin=1.0):
    import torch
    d = torch.sqrt(((e1 - e2) ** 2).sum(dim=1) + 1e-12)
    return 0.5 * torch.mean(y * d ** 2 + (1 - y) * torch.clamp(margin - d, min=0) ** 2)


def status_bytes(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no " + key)


def reset_peak_rss():
    """Returns the heap's free memory to the system, then restarts the peak RSS (VmHWM) at the
    current RSS (Linux clear_refs 5); returns that RSS."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status_bytes("VmRSS")


def make_step(a, torch, encoder, data, config):
    """The training step of one configuration (without the optimizer) and its rematch model, if any."""
    from torch.utils.checkpoint import checkpoint_sequential
    import rematch.torch as rt
    x1, x2, y = data
    if config["kind"] == "rematch":
        model = rt.Join([encoder, encoder], contrastive, budget=config["budget"])
        model.plan(x1, x2, y)
        return (lambda: model(x1, x2, y)), model
    if config["kind"] == "checkpoint":
        def step():
            e1 = checkpoint_sequential(encoder, config["segments"], x1.detach().requires_grad_())
            e2 = checkpoint_sequential(encoder, config["segments"], x2.detach().requires_grad_())
            return contrastive(e1, e2, y)
        return step, None
    return (lambda: contrastive(encoder(x1), encoder(x2), y)), None


def timed_step(opt, step):
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    step().backward()
    opt.step()
    return time.perf_counter() - start


def run_child(a):
    """Measures one configuration alone (memory, and its own step time); prints its JSON line."""
    import torch
    torch.set_num_threads(a.threads)
    encoder, data = build(a, torch)
    config = json.loads(a.child)
    result = dict(config)
    step, model = make_step(a, torch, encoder, data, config)
    if model is not None:
        plan = model._plan
        result.update(predicted_peak=plan.predicted_peak, predicted_overhead_pct=plan.predicted_overhead_pct,
                      predicted_extra_s=plan.solution.makespan - plan.solution.store_all_makespan,
                      exact=plan.solution.exact)
    opt = torch.optim.SGD(encoder.parameters(), lr=0.01, momentum=0.9)
    # The peak RSS of training alone: the high-water mark restarts here, after the model, the data
    # and (rematch) the solver's tables, which are freed once the plan is made.
    result["rss_before"] = reset_peak_rss()
    times = [timed_step(opt, step) for _ in range(a.warmup + a.steps)][a.warmup:]
    result["step_s"] = statistics.median(times)
    result["peak_rss"] = status_bytes("VmHWM")
    if model is not None:
        result["executor_peak"] = model.last_peak
    print(json.dumps(result))


def compared_pairs(configs):
    """The paced run's blocks: checkpoint:S with rematch at its level, side by side (the verdicts
    compare them), every other configuration alone."""
    def level_of(c):
        if c["kind"] == "checkpoint":
            return c["name"]
        label = c.get("label", "")
        return label[len("= "):] if label.startswith("= checkpoint:") else None

    blocks, pair = [], {}
    for i, c in enumerate(configs):
        key = level_of(c)
        if key is None:
            blocks.append([i])
        elif key in pair:
            pair[key].append(i)
        else:
            pair[key] = [i]
            blocks.append(pair[key])
    return blocks


def run_paced(a):
    """Every configuration in one process, their steps taken in turns (--steps-per-round consecutive
    steps of each per round). The turns of checkpoint:S and of rematch at its level come one right
    after the other, so that a disturbance of a few seconds falls on both sides of their per-round
    difference; the order of these pairs and of the other configurations, and within each pair, is
    shuffled each round, so that no configuration always follows the same one. Prints the median of
    each turn's steps in wall and CPU time (the process's, all threads) and the wall time of each
    turn's first step, each [round][configuration], and the predictions of its plans.
    The first step after another configuration's pays for the switch (its caches and the heap's
    free blocks are the other's); the median of a turn is the steady step of training one
    configuration, and it leaves out a step that a moment's disturbance hit."""
    import torch
    torch.set_num_threads(a.threads)
    encoder, data = build(a, torch)
    configs = json.loads(a.paced)
    made = [make_step(a, torch, encoder, data, c) for c in configs]
    steps = [step for step, _ in made]
    # The paced run plans again: its schedules (and their predictions) are the ones it times.
    predicted = [None if model is None else
                 {"predicted_overhead_pct": model._plan.predicted_overhead_pct,
                  "predicted_extra_s": model._plan.solution.makespan - model._plan.solution.store_all_makespan}
                 for _, model in made]
    opt = torch.optim.SGD(encoder.parameters(), lr=0.01, momentum=0.9)
    for _ in range(a.warmup):
        for step in steps:
            timed_step(opt, step)
    order = random.Random(a.seed)
    blocks = compared_pairs(configs)
    wall, cpu, first = [], [], []
    for _ in range(a.paced_rounds):
        order.shuffle(blocks)
        for block in blocks:
            order.shuffle(block)
        turn = [i for block in blocks for i in block]
        for table in (wall, cpu, first):
            table.append([0.0] * len(steps))
        for i in turn:
            walls, cpus = [], []
            for _ in range(a.steps_per_round):
                start = time.process_time()
                walls.append(timed_step(opt, steps[i]))
                cpus.append(time.process_time() - start)
            wall[-1][i], cpu[-1][i], first[-1][i] = statistics.median(walls), statistics.median(cpus), walls[0]
    print(json.dumps({"wall": wall, "cpu": cpu, "first": first, "predicted": predicted}))


def child(a, flag, value):
    """This script in a fresh process with --child or --paced; returns its last line's JSON."""
    argv = [sys.executable, os.path.abspath(__file__), "--depth", str(a.depth), "--width", str(a.width),
            "--widths", a.widths, "--batch", str(a.batch), "--segments", a.segments, "--steps", str(a.steps),
            "--warmup", str(a.warmup),
            "--paced-rounds", str(a.paced_rounds), "--steps-per-round", str(a.steps_per_round),
            "--threads", str(a.threads), "--runtime-env", a.runtime_env,
            "--seed", str(a.seed), flag, json.dumps(value)]
    out = subprocess.run(argv, capture_output=True, text=True, env=runtime_env(a))
    if out.returncode != 0:
        sys.exit("configuration %s failed:\n%s" % (value, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


def levels(a):
    """The profiled graph's schedules of plain (store-all) and checkpoint:S (segments:S): their
    simulated peak is the configuration's memory level, their makespan its predicted step time."""
    import torch
    import rematch
    import rematch.torch as rt
    encoder, (x1, x2, y) = build(a, torch)
    plan = rt.Join([encoder, encoder], contrastive, budget=1 << 50).plan(x1, x2, y)
    graph = rematch.graph(plan.graph)
    big = sys.float_info.max
    out = {"plain": rematch.solve(graph, big, "store-all")}
    for s in a.segment_counts:
        out["checkpoint:%d" % s] = rematch.solve(graph, big, "segments:%d" % s)
    return out, rematch.least_budget(graph)


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def run_rounds(a, configs):
    """Every configuration once per round; each result gets the median of its rounds' step times."""
    runs = [[] for _ in configs]
    for _ in range(a.rounds):
        for i, config in enumerate(configs):
            runs[i].append(child(a, "--child", config))
    results = []
    for config_runs in runs:
        r = dict(config_runs[len(config_runs) // 2])  # peak RSS and counts of one representative run
        steps = [run["step_s"] for run in config_runs]
        r.update(step_s=statistics.median(steps), step_s_rounds=steps)
        results.append(r)
    return results


def quartiles(values):
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def median_interval(values, confidence=0.95):
    """A distribution-free confidence interval of the median: the k-th smallest and k-th largest
    value, k the largest rank with P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2 (the sign
    test's interval; it holds whatever the noise's distribution)."""
    xs, n = sorted(values), len(values)
    k, below = 0, 0.0
    while below + math.comb(n, k) / 2.0 ** n <= (1 - confidence) / 2:
        below += math.comb(n, k) / 2.0 ** n
        k += 1
    return xs[k - 1], xs[n - k]


def judged(diff):
    """The verdict on per-round differences: their median's 95% interval excludes zero, or not."""
    low, high = median_interval(diff)
    return low, high, "lower" if high < 0 else "higher" if low > 0 else "not distinguishable"


def executor_cost(results, paced, cpu):
    """rematch at plain's level (a schedule that recomputes nothing) against plain, round by round,
    in step time and in CPU time."""
    j = next(n for n, r in enumerate(results) if r.get("label") == "= plain")
    out = {}
    for prefix, times in (("", paced), ("cpu_", cpu)):
        diff = [100.0 * (t[j] / t[0] - 1) for t in times]
        low, high, verdict = judged(diff)
        out.update({prefix + "overhead_pct": statistics.median(diff), prefix + "interval_pct": [low, high],
                    prefix + "verdict": verdict})
    out["rounds"] = len(paced)
    return out


def verdicts(a, results, paced, cpu):
    """At each checkpoint:S level: checkpoint's paced overhead and rematch's at the same budget, and
    per round the difference of the two (percentage points of plain's step): its median and 95%
    interval decide lower / higher / not distinguishable. The same on CPU times beside it (less
    moved by other processes taking the cores, but counting any thread that spins)."""
    out = []
    for s in a.segment_counts:
        i = next(n for n, r in enumerate(results) if r["name"] == "checkpoint:%d" % s)
        j = next(n for n, r in enumerate(results) if r.get("label") == "= checkpoint:%d" % s)
        diff = [100.0 * (t[j] - t[i]) / t[0] for t in paced]
        low, high, verdict = judged(diff)
        out.append({"segments": s, "level": results[i]["level"],
                    "checkpoint_overhead_pct": results[i]["overhead_pct"],
                    "rematch_overhead_pct": results[j]["overhead_pct"], "rematch_lower": verdict == "lower",
                    "difference_pct": statistics.median(diff), "difference_interval_pct": [low, high],
                    "verdict": verdict, "rounds": len(diff)})
        diff = [100.0 * (t[j] - t[i]) / t[0] for t in cpu]
        low, high, verdict = judged(diff)
        out[-1].update({"cpu_difference_pct": statistics.median(diff), "cpu_difference_interval_pct": [low, high],
                        "cpu_verdict": verdict})
    return out


def main():
    started = time.perf_counter()
    a = parse_args()
    env = runtime_env(a)
    if any(os.environ.get(k) != v for k, v in env.items()):  # the run's settings from its first process on
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    if a.child:
        run_child(a)
        return
    if a.paced:
        run_paced(a)
        return
    modelled, least = levels(a)
    configs = [{"kind": "plain", "name": "plain", "level": modelled["plain"].peak_memory,
                "predicted_overhead_pct": 0.0, "predicted_extra_s": 0.0}]
    for s in a.segment_counts:
        name = "checkpoint:%d" % s
        configs.append({"kind": "checkpoint", "name": name, "segments": s, "level": modelled[name].peak_memory,
                        "predicted_overhead_pct": modelled[name].overhead_pct,
                        "predicted_extra_s": modelled[name].makespan - modelled["plain"].makespan})
    budgets = [(modelled["plain"].peak_memory, "= plain")]  # the executor's own cost: no recomputation
    for s in a.segment_counts:
        level = modelled["checkpoint:%d" % s].peak_memory
        budgets += [(level, "= checkpoint:%d" % s)] + [(f * level, "%.2f x checkpoint:%d" % (f, s))
                                                       for f in a.fraction_list if f * level >= least]
    budgets.append((least, "least budget"))
    for budget, label in budgets:
        configs.append({"kind": "rematch", "name": "rematch", "budget": int(budget), "level": int(budget),
                        "label": label})
    results = run_rounds(a, configs)
    plain = results[0]["step_s"]
    measured = child(a, "--paced", configs)
    paced, cpu, first = measured["wall"], measured["cpu"], measured["first"]
    for i, r in enumerate(results):
        if measured["predicted"][i] is not None:  # the fresh process's plan: its memory was measured
            r["alone_predicted_overhead_pct"] = r["predicted_overhead_pct"]
            r["alone_predicted_extra_s"] = r["predicted_extra_s"]
            r.update(measured["predicted"][i])
        overheads = [100.0 * (t[i] / t[0] - 1) for t in paced]
        r["alone_overhead_pct"] = 100.0 * (r["step_s"] / plain - 1)
        r["overhead_pct"] = statistics.median(overheads)
        r["overhead_p25_pct"], r["overhead_p75_pct"] = quartiles(overheads)
        r["paced_step_s"] = statistics.median(t[i] for t in paced)
        r["paced_step_s_rounds"] = [t[i] for t in paced]
        r["paced_cpu_s"] = statistics.median(t[i] for t in cpu)
        r["cpu_overhead_pct"] = statistics.median(100.0 * (t[i] / t[0] - 1) for t in cpu)
        # The paced step's time over plain's in seconds, beside the profile's prediction of it: the
        # two overheads' baselines differ (a measured step has the optimizer, the loss and Python
        # around the profiled stages' runs), their extra times do not.
        r["extra_s"] = statistics.median(t[i] - t[0] for t in paced)
        r["first_step_overhead_pct"] = statistics.median(100.0 * (t[i] / t[0] - 1) for t in first)
    checks = verdicts(a, results, paced, cpu)
    own = executor_cost(results, paced, cpu)
    setup = {"cpu": cpu_model(), "threads": a.threads, "torch": __import__("torch").__version__,
             "depth": a.depth, "width": a.width, "widths": a.layer_widths, "batch": a.batch, "steps": a.steps,
             "rounds": a.rounds,
             "paced_rounds": a.paced_rounds, "steps_per_round": a.steps_per_round, "seed": a.seed,
             "least_budget": least, "store_all_makespan_s": modelled["plain"].makespan,
             "runtime_env": a.env, "environment": recorded_env(), "elapsed_s": time.perf_counter() - started}
    mib = float(1 << 20)
    shape = ("%d x %d" % (a.depth, a.width) if not a.widths else
             "of %d layers of different widths (%s)" % (a.depth, a.widths))
    print("siamese MLP %s, batch %d pairs; %s, %d threads; torch %s" % (
        shape, a.batch, setup["cpu"], a.threads, setup["torch"]))
    print("memory and 'alone': %d fresh process(es) per configuration, %d steps each; 'paced': one process, "
          "%d rounds of %d steps of each configuration (their median)" % (
              a.rounds, a.steps, a.paced_rounds, a.steps_per_round))
    print("environment: %s" % " ".join("%s=%s" % kv for kv in setup["environment"].items()))
    print("%-14s %-20s %9s %11s %8s %10s %8s %9s %7s %22s %7s %9s %8s %8s" % (
        "config", "budget", "level MiB", "counted MiB", "RSS MiB", "RSS growth", "alone ms", "paced ms",
        "alone", "paced (quartiles)", "CPU", "predicted", "extra ms", "pred. ms"))
    for r in results:
        counted = r.get("executor_peak")
        print("%-14s %-20s %9.2f %11s %8.1f %10.1f %8.1f %9.1f %6.1f%% %22s %6.1f%% %8.1f%% %8.1f %8.1f" % (
            r["name"], r.get("label", ""), r["level"] / mib, "%.2f" % (counted / mib) if counted else "-",
            r["peak_rss"] / mib, (r["peak_rss"] - r["rss_before"]) / mib, 1e3 * r["step_s"],
            1e3 * r["paced_step_s"], r["alone_overhead_pct"],
            "%.1f%% [%.1f, %.1f]" % (r["overhead_pct"], r["overhead_p25_pct"], r["overhead_p75_pct"]),
            r["cpu_overhead_pct"], r["predicted_overhead_pct"], 1e3 * r["extra_s"], 1e3 * r["predicted_extra_s"]))
    print("plain's paced step %.1f ms; the profile's store-all makespan (the predictions' baseline) %.1f ms" % (
        1e3 * results[0]["paced_step_s"], 1e3 * setup["store_all_makespan_s"]))
    print("rematch = plain (no recomputation) against plain: %+.1f%% (95%% interval %+.1f to %+.1f, %d rounds): %s;"
          " CPU time %+.1f%% (%+.1f to %+.1f): %s" % (
              own["overhead_pct"], own["interval_pct"][0], own["interval_pct"][1], own["rounds"], own["verdict"],
              own["cpu_overhead_pct"], own["cpu_interval_pct"][0], own["cpu_interval_pct"][1], own["cpu_verdict"]))
    for v in checks:
        print("at checkpoint:%d's level (%.2f MiB): checkpoint %.1f%%, rematch %.1f%%; rematch - checkpoint "
              "%+.1f points (95%% interval %+.1f to %+.1f, %d rounds): rematch %s; CPU time %+.1f (%+.1f to %+.1f): %s" % (
                  v["segments"], v["level"] / mib, v["checkpoint_overhead_pct"], v["rematch_overhead_pct"],
                  v["difference_pct"], v["difference_interval_pct"][0], v["difference_interval_pct"][1],
                  v["rounds"], v["verdict"], v["cpu_difference_pct"], v["cpu_difference_interval_pct"][0],
                  v["cpu_difference_interval_pct"][1], v["cpu_verdict"]))
    print("run took %.0f s" % setup["elapsed_s"])
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"setup": setup, "results": results, "verdicts": checks, "executor_cost": own}, f, indent=1)
            f.write("\n")
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
