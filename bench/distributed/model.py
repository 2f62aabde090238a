"""The step-time model of docs/distributed.md, checked against the host the bench ran on and extrapolated.

    /usr/bin/python3 bench/distributed/model.py RESULTS_DIR

reads RESULTS_DIR/{allreduce,r1x1,r1x2,r2x1}.json (run.sh writes them), prints the check of the
two-process point and the predicted step time and efficiency for 2..64 nodes of two
interconnects, and writes RESULTS_DIR/model.json.

Model (global batch B, N nodes, one process each):
  compute    C(N) = c * B / N                      c: measured seconds per sample, one node
  exchange   S(N) = (N - 1) * (ceil(G / b) * alpha + G / beta) + N * G / mu
             each process receives the other N - 1 copies of the G gradient bytes (in buckets
             of b bytes per process, each costing a latency alpha), then reads all N copies
             once to add them in rank order (memory bandwidth mu)
  exposed    X(N) = max(S_b(N), S(N) - h * C(N))   the exchange starts when the last stage's
             gradient is final and hides behind the remaining backward, about h = 2/3 of the
             compute (backward is twice the forward's work), except for the last bucket S_b
  step       T(N) = C(N) + X(N);  efficiency E(N) = T(1) / (N * T(N)) at a fixed global batch,
             and c * b_node / T(N) at a fixed per-node batch b_node = B / 2 (weak scaling).
"""
import json
import math
import sys
from pathlib import Path

HIDDEN = 2 / 3
BUCKET = 2 << 20  # bytes per bucket over all processes (distributed/ordered_sum.cpp)
MEMORY_BANDWIDTH = 10e9  # bytes/s a core sums at: conservative for DDR4/DDR5 servers
INTERCONNECTS = {  # latency s, bandwidth bytes/s per direction
    "10GbE (TCP)": (30e-6, 1.1e9),
    "100 Gb/s InfiniBand EDR": (2e-6, 11e9),
}


def exchange_seconds(n, gradient_bytes, alpha, beta, mu=MEMORY_BANDWIDTH):
    if n == 1:
        return 0.0
    bucket = max(16 << 10, BUCKET // n)
    sends = math.ceil(gradient_bytes / bucket)
    return (n - 1) * (sends * alpha + gradient_bytes / beta) + n * gradient_bytes / mu


def step_seconds(n, batch, per_sample, gradient_bytes, alpha, beta, mu=MEMORY_BANDWIDTH):
    compute = per_sample * batch / n
    whole = exchange_seconds(n, gradient_bytes, alpha, beta, mu)
    last = exchange_seconds(n, min(gradient_bytes, max(16 << 10, BUCKET // n)), alpha, beta, mu)
    exposed = 0.0 if n == 1 else max(last, whole - HIDDEN * compute)
    return compute + exposed, exposed




def main(results):
    load = lambda name: json.loads((results / name).read_text())
    ar, one, two_threads, two = load("allreduce.json"), load("r1x1.json"), load("r1x2.json"), load("r2x1.json")
    batch, gradient_bytes = one["batch"], two["gradient_bytes"]
    # Skip the first step (warm-up); other load on the machine only adds time, so the fastest
    # step is the closest to the machine's own figure.
    step = lambda r: min(r["step_seconds"][1:])
    per_sample = step(one) / batch
    # The local interconnect: latency from the smallest message, bandwidth from the ordered sum
    # at 1 MiB (large enough to be bandwidth-bound, small enough to stay in cache).
    sizes = {row["bytes"]: row for row in ar["sizes"]}
    alpha = sizes[4]["ordered_sum_seconds"]
    beta = (1 << 20) / (sizes[1 << 20]["ordered_sum_seconds"] - alpha)
    predicted, predicted_exposed = step_seconds(2, batch, per_sample, gradient_bytes, alpha, beta, beta)
    measured = step(two)
    # Rank 0's step less its exposed wait: the compute part, which the model takes as c B / N.
    compute_two = min(t - x for t, x in zip(two["step_seconds"][1:], two["exposed_communication_seconds"][1:]))
    check = {
        "per_sample_seconds_1_thread": per_sample,
        "gradient_bytes": gradient_bytes,
        "local_alpha_s": alpha,
        "local_beta_bytes_per_s": beta,
        "measured_1x1_step_s": step(one),
        "measured_1x2_step_s": step(two_threads),
        "measured_2x1_step_s": measured,
        "predicted_2x1_step_s": predicted,
        "measured_2x1_compute_s": compute_two,
        "predicted_2x1_compute_s": per_sample * batch / 2,
        "measured_2x1_exposed_s": min(two["exposed_communication_seconds"][1:]),
        "predicted_2x1_exposed_s": predicted_exposed,
        "samples_per_s": {"1x1": one["samples_per_s"], "1x2": two_threads["samples_per_s"],
                          "2x1": two["samples_per_s"]},
    }
    print(f"cpu {ar['cpu']}, ISA {ar['isa']}; model {one['model']} depth {one['depth']} width "
          f"{one['width']}, global batch {batch}, gradients {gradient_bytes / 2**20:.2f} MiB")
    print(f"throughput  1 process x 1 thread {one['samples_per_s']:.0f} samples/s, 1 x 2 threads "
          f"{two_threads['samples_per_s']:.0f}, 2 processes x 1 thread {two['samples_per_s']:.0f}")
    print(f"2 x 1 step  measured {measured:.4f} s (exposed communication "
          f"{check['measured_2x1_exposed_s']:.4f} s), predicted {predicted:.4f} s "
          f"(exposed {predicted_exposed:.4f} s): ratio {measured / predicted:.2f}; compute part measured "
          f"{compute_two:.4f} s, predicted {per_sample * batch / 2:.4f} s")
    table = {}
    for name, (a, b) in INTERCONNECTS.items():
        t1, _ = step_seconds(1, batch, per_sample, gradient_bytes, a, b)
        rows = []
        print(f"\n{name}: alpha {a * 1e6:.0f} us, beta {b / 1e9:.1f} GB/s")
        print(f"{'nodes':>5} {'step_s':>9} {'exposed_s':>9} {'strong_eff':>10} {'weak_step_s':>11} {'weak_eff':>8}")
        for n in (2, 4, 8, 16, 32, 64):
            t, x = step_seconds(n, batch, per_sample, gradient_bytes, a, b)
            tw, _ = step_seconds(n, batch * n // 2, per_sample, gradient_bytes, a, b)
            row = {"nodes": n, "step_s": t, "exposed_s": x, "strong_efficiency": t1 / (n * t),
                   "weak_step_s": tw, "weak_efficiency": per_sample * batch / 2 / tw}
            rows.append(row)
            print(f"{n:5d} {t:9.4f} {x:9.4f} {row['strong_efficiency']:10.2f} {tw:11.4f} {row['weak_efficiency']:8.2f}")
        table[name] = rows
    (results / "model.json").write_text(json.dumps({"check": check, "prediction": table}, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
