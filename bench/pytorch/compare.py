#!/usr/bin/python3
"""rematch next to PyTorch on the same siamese MLP (same depth, width, batch, initialisation
scheme, contrastive loss, SGD with momentum 0.9). rematch trains on Fashion-MNIST pairs; PyTorch
on one random batch of the same shape, so that its process holds no dataset and its peak RSS
minus its baseline is its activation memory (step times do not depend on the values).

Two experiments, each run in fresh processes (peak RSS is a per-process high-water mark):
  throughput  store-all step time of both frameworks, each at its best thread count (1 or 2);
  memory      PyTorch store-all and checkpoint_sequential with S segments, and rematch's optimal
              schedule given, as its activation budget, the activation memory PyTorch used at
              that level (peak RSS minus the process baseline and weights+gradients+momentum).
              Recompute overhead = step time / the same framework's store-all step time - 1.
              rematch is also run below every level PyTorch reaches, down to its least feasible
              budget, which draws its whole memory/overhead curve.

Writes FILE.json (every run), FILE.md (tables) and FILE.svg (overhead against memory).

  /usr/bin/python3 bench/pytorch/compare.py --out bench/results/pytorch-comparison-HOST
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

def cpu_model():
    """The CPU's model name and vector ISA, for the tables (results vary by host)."""
    info = open("/proc/cpuinfo").read()
    name = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "unknown CPU")
    return name + (", AVX-512" if " avx512f" in info else ", AVX2" if " avx2" in info else "")


HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from bench_schedules import RUNTIME_ENV  # noqa: E402
MIB = 1 << 20


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rematch", default=os.path.join(ROOT, "build", "cli", "rematch"))
    p.add_argument("--out", default="pytorch-comparison", help="FILE: writes FILE.json, FILE.md, FILE.svg")
    p.add_argument("--throughput-shape", default="8,2048,512,2048", help="depth,width,batch,embedding")
    p.add_argument("--memory-shape", default="16,1024,4096,64", help="depth,width,batch,embedding")
    p.add_argument("--segments", default="2,4,8,16")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--quick", action="store_true", help="small shapes, for a smoke test")
    a = p.parse_args()
    if a.quick:
        a.throughput_shape, a.memory_shape, a.segments, a.steps = "4,256,128,256", "8,256,512,64", "2,4", 2
    return a


def shape(text):
    depth, width, batch, embedding = (int(v) for v in text.split(","))
    return {"depth": depth, "width": width, "batch": batch, "embedding": embedding}


def torch_env(threads):
    """PyTorch at its best on a CPU: the runtime settings of bench_schedules.py (idle OpenMP and
    OpenBLAS workers sleep, freed tensors stay in malloc's heap), recorded in the results."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    env.update(item.split("=", 1) for item in RUNTIME_ENV.split(","))
    return env


def run_torch(s, mode, threads, steps, lr):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "siamese_torch.py"), "--mode", mode,
                        "--depth", str(s["depth"]), "--width", str(s["width"]), "--batch", str(s["batch"]),
                        "--embedding", str(s["embedding"]), "--steps", str(steps), "--threads", str(threads),
                        "--lr", str(lr), "--data", "random", "--json", f.name],
                       check=True, stdout=subprocess.DEVNULL, env=torch_env(threads))
        r = json.load(open(f.name))
    r["runtime_env"] = RUNTIME_ENV
    r["activation_bytes"] = max(0, r["peak_rss_bytes"] - r["baseline_rss_bytes"] - r["param_state_bytes"])
    return r


def model_args(s):
    return ["--model", "siamese-mlp", "--depth", str(s["depth"]), "--width", str(s["width"]),
            "--batch", str(s["batch"]), "--embedding", str(s["embedding"])]


def rematch_graph(a, s):
    with tempfile.NamedTemporaryFile(suffix=".json") as g:
        subprocess.run([a.rematch, "profile", *model_args(s), "-o", g.name], check=True, stdout=subprocess.DEVNULL)
        info = json.loads(subprocess.run([a.rematch, "info", g.name, "--format", "json"], check=True,
                                         capture_output=True, text=True).stdout)
    return int(info["store_all_peak"]), int(info["min_memory"])


def run_rematch(a, s, solver, budget, threads):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        subprocess.run([a.rematch, "train", *model_args(s), "--solver", solver, "--memory", str(budget),
                        "--optimizer", "sgd", "--lr", str(a.lr), "--steps", str(a.steps + 1), "--no-eval",
                        "--report", f.name], check=True, stdout=subprocess.DEVNULL, env=env)
        r = json.load(open(f.name))
    # The first step pays for first-touch page faults of the arena: left out, like PyTorch's warm-up.
    r["step_time_s"] = statistics.median(r["step_seconds"][1:])
    r["framework"], r["threads"] = "rematch", threads
    return r


def best(runs):
    return min(runs, key=lambda r: r["step_time_s"])


def svg_plot(rows, path):
    width, height, pad = 640, 400, 60
    xs = [r["memory_mib"] for r in rows]
    ys = [r["overhead_pct"] for r in rows]
    x0, x1 = 0, max(xs) * 1.1
    y0, y1 = min(0, min(ys)), max(5, max(ys) * 1.15)
    px = lambda x: pad + (x - x0) / (x1 - x0) * (width - 2 * pad)
    py = lambda y: height - pad - (y - y0) / (y1 - y0) * (height - 2 * pad)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>',
           f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
           f'<text x="{width / 2}" y="{height - 15}" text-anchor="middle">activation memory (MiB)</text>',
           f'<text x="15" y="{height / 2}" transform="rotate(-90 15 {height / 2})" text-anchor="middle">recompute overhead (%)</text>']
    for t in range(5):
        xv, yv = x0 + t * (x1 - x0) / 4, y0 + t * (y1 - y0) / 4
        out.append(f'<text x="{px(xv)}" y="{height - pad + 16}" text-anchor="middle">{xv:.0f}</text>')
        out.append(f'<text x="{pad - 6}" y="{py(yv) + 4}" text-anchor="end">{yv:.0f}</text>')
    for framework, colour in (("pytorch", "#d62728"), ("rematch", "#1f77b4")):
        pts = sorted((r["memory_mib"], r["overhead_pct"]) for r in rows if r["framework"] == framework)
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' %
                   (colour, " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)))
        out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4" fill="{colour}"/>' for x, y in pts]
        label_y = pad + (20 if framework == "pytorch" else 40)
        out.append(f'<text x="{width - pad - 150}" y="{label_y}" fill="{colour}">{framework}</text>')
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


def main():
    a = parse_args()
    results = {"throughput": [], "memory": []}

    t = shape(a.throughput_shape)
    torch_sa = best([run_torch(t, "store-all", th, a.steps, a.lr) for th in (1, 2)])
    sa_peak, _ = rematch_graph(a, t)
    rematch_sa = best([run_rematch(a, t, "store-all", sa_peak, th) for th in (1, 2)])
    results["throughput"] = [torch_sa, rematch_sa]
    speedup = torch_sa["step_time_s"] / rematch_sa["step_time_s"]

    m = shape(a.memory_shape)
    torch_base = best([run_torch(m, "store-all", th, a.steps, a.lr) for th in (1, 2)])
    th_torch = torch_base["threads"]
    sa_peak, least = rematch_graph(a, m)
    rematch_base = best([run_rematch(a, m, "store-all", sa_peak, th) for th in (1, 2)])
    th_rematch = rematch_base["threads"]
    rows = []
    def row(framework, level, r, base, memory):
        rows.append({"framework": framework, "level": level, "memory_mib": memory / MIB,
                     "step_time_s": r["step_time_s"], "peak_rss_mib": r.get("peak_rss_bytes", r.get("peak_rss", 0)) / MIB,
                     "overhead_pct": 100 * (r["step_time_s"] / base["step_time_s"] - 1)})
    row("pytorch", "store-all", torch_base, torch_base, torch_base["activation_bytes"])
    row("rematch", "store-all", rematch_base, rematch_base, rematch_base["arena_peak"])
    for seg in (int(v) for v in a.segments.split(",")):
        if seg > m["depth"]:
            continue
        tr = run_torch(m, f"checkpoint:{seg}", th_torch, a.steps, a.lr)
        results["memory"].append(tr)
        row("pytorch", f"checkpoint:{seg}", tr, torch_base, tr["activation_bytes"])
        budget = max(least, min(sa_peak, tr["activation_bytes"]))
        rr = run_rematch(a, m, "optimal", budget, th_rematch)
        rr["matched_pytorch_segments"] = seg
        results["memory"].append(rr)
        row("rematch", f"optimal at checkpoint:{seg}'s memory", rr, rematch_base, rr["arena_peak"])
    # Below the least memory PyTorch reaches: rematch's own curve down to its least feasible budget.
    for f in (0.0, 0.2, 0.5):
        budget = int(least + f * (sa_peak - least))
        rr = run_rematch(a, m, "optimal", budget, th_rematch)
        results["memory"].append(rr)
        row("rematch", f"optimal at {budget / MIB:.0f} MiB", rr, rematch_base, rr["arena_peak"])
    results["memory"] += [torch_base, rematch_base]
    results["memory_rows"] = rows

    json.dump(results, open(a.out + ".json", "w"), indent=1)
    with open(a.out + ".md", "w") as md:
        md.write(f"Host: {cpu_model()}, {os.cpu_count()} CPUs. Command: "
                 f"`/usr/bin/python3 bench/pytorch/compare.py {' '.join(sys.argv[1:])}`.\n\n")
        md.write(f"Throughput, store-all, {t['depth']} x {t['width']} MLP, embedding {t['embedding']}, batch {t['batch']} per branch:\n\n")
        md.write("| framework | threads | step (s) | GFLOP/s | peak RSS (MiB) |\n|---|---|---|---|---|\n")
        flops = torch_sa["gflops"] * torch_sa["step_time_s"]  # the same model's work, in GFLOP
        for r in (torch_sa, rematch_sa):
            rss = r.get("peak_rss_bytes", r.get("peak_rss", 0)) / MIB
            md.write(f"| {r['framework']} | {r['threads']} | {r['step_time_s']:.4f} | "
                     f"{flops / r['step_time_s']:.1f} | {rss:.0f} |\n")
        md.write(f"\nrematch / PyTorch throughput: **{speedup:.2f}x**\n\n")
        md.write(f"Memory against recompute overhead, {m['depth']} x {m['width']} MLP, embedding {m['embedding']}, "
                 f"batch {m['batch']} per branch (PyTorch {th_torch} thread(s), rematch {th_rematch}):\n\n")
        md.write("| framework | schedule | activation memory (MiB) | step (s) | overhead (%) | peak RSS (MiB) |\n|---|---|---|---|---|---|\n")
        for r in rows:
            md.write(f"| {r['framework']} | {r['level']} | {r['memory_mib']:.0f} | {r['step_time_s']:.3f} | "
                     f"{r['overhead_pct']:.1f} | {r['peak_rss_mib']:.0f} |\n")
    svg_plot(rows, a.out + ".svg")
    print(open(a.out + ".md").read())


if __name__ == "__main__":
    sys.exit(main())
