#!/usr/bin/python3
"""PyTorch side of the siamese-MLP comparison: one training step, timed.

Model (rematch's siamese-mlp): encoder = (depth - 1) x [Linear(width) + ReLU] from 784
inputs, then Linear(width -> embedding), shared by both branches; contrastive loss 0.5 * mean(y d^2 + (1 - y) max(0, margin - d)^2),
d = sqrt(sum (e1 - e2)^2 + 1e-12); SGD with momentum 0.9.

Modes: store-all (plain autograd) or checkpoint:S (checkpoint_sequential with S
segments on each branch). GFLOP/s counts the model's GEMM work only, 2*N*C*K
per Linear forward and twice that backward, both branches; the forward work
that checkpointing repeats is not counted, so the figure is useful throughput.

Run with Debian's interpreter: /usr/bin/python3 bench/pytorch/siamese_torch.py --help
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import sys
import time

IMAGE_PIXELS = 784
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
INIT = "rematch's: He uniform weights U(-sqrt(6/fan_in), sqrt(6/fan_in)) (kaiming_uniform_, relu), zero biases"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", default="store-all", help="store-all | checkpoint:S")
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--embedding", type=int, default=64, help="output features of the last Linear")
    p.add_argument("--batch", type=int, default=512, help="pairs per step (rows per branch)")
    p.add_argument("--steps", type=int, default=5, help="timed steps (the median is reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--margin", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--data", choices=["random", "fashion-mnist"], default="random")
    p.add_argument("--data-dir", default=FASHION_MNIST_DIR)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="FILE", help="write the result as one JSON object")
    a = p.parse_args()
    if a.mode == "store-all":
        a.segments = 0
    elif a.mode.startswith("checkpoint:") and a.mode[len("checkpoint:"):].isdigit():
        a.segments = int(a.mode[len("checkpoint:"):])
        # checkpoint_sequential divides depth // S blocks per segment: 0 breaks it.
        if not 1 <= a.segments <= a.depth:
            p.error(f"checkpoint:S needs 1 <= S <= depth ({a.depth}), got {a.segments}")
    else:
        p.error(f"--mode must be store-all or checkpoint:S, got {a.mode!r}")
    for name in ("depth", "width", "batch", "steps", "threads"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be positive")
    return a


ARGS = parse_args()
# Debian's torch calls a generic BLAS (OpenBLAS here) whose own thread pool
# ignores torch.set_num_threads; it reads these once, when it is loaded.
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.checkpoint import checkpoint_sequential  # noqa: E402


def max_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def read_idx(path, magic, dims):
    """One IDX (gzip) file as a uint8 array of shape [count, *dims[1:]], checked."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    header = 4 * (1 + dims)
    if len(raw) < header:
        sys.exit(f"{path}: truncated header")
    words = np.frombuffer(raw[:header], dtype=">u4")
    if words[0] != magic:
        sys.exit(f"{path}: bad magic 0x{words[0]:08x} (expected 0x{magic:08x})")
    shape = tuple(int(w) for w in words[1:])
    if len(raw) - header != int(np.prod(shape)):
        sys.exit(f"{path}: payload is {len(raw) - header} bytes, header says {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def fashion_mnist_pairs(data_dir, batch, count, rng):
    """`count` batches of (left, right, similar), half of each batch same-class."""
    images = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte.gz"), 0x803, 3)
    labels = read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte.gz"), 0x801, 1)
    if images.shape[0] != labels.shape[0] or images.shape[1] * images.shape[2] != IMAGE_PIXELS:
        sys.exit(f"{data_dir}: {images.shape} images do not match {labels.shape} labels")
    flat = images.reshape(len(images), IMAGE_PIXELS).astype(np.float32) / 255.0
    by_class = [np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1)]
    batches = []
    for _ in range(count):
        similar = rng.permutation(np.arange(batch) < batch // 2).astype(np.float32)
        left = rng.integers(0, len(flat), batch)
        right = np.empty(batch, dtype=np.int64)
        for i, a in enumerate(left):
            if similar[i]:
                right[i] = rng.choice(by_class[labels[a]])  # may equal a: harmless for timing
            else:
                while labels[right_i := rng.integers(0, len(flat))] == labels[a]:
                    pass
                right[i] = right_i
        batches.append((torch.from_numpy(flat[left]), torch.from_numpy(flat[right]), torch.from_numpy(similar)))
    return batches


def random_pairs(batch, rng):
    """One fixed batch: timing does not depend on the values, and the loss then shows fitting."""
    left = rng.random((batch, IMAGE_PIXELS), dtype=np.float32)
    right = rng.random((batch, IMAGE_PIXELS), dtype=np.float32)
    similar = (rng.random(batch) < 0.5).astype(np.float32)
    return [(torch.from_numpy(left), torch.from_numpy(right), torch.from_numpy(similar))]


def make_encoder(depth, width, embedding):
    # One Sequential per layer, so checkpoint segments split between layers,
    # never between a Linear and its ReLU.
    blocks = [torch.nn.Sequential(torch.nn.Linear(IMAGE_PIXELS if i == 0 else width, width), torch.nn.ReLU())
              for i in range(depth - 1)]
    blocks.append(torch.nn.Sequential(torch.nn.Linear(width, embedding)))
    for block in blocks:
        torch.nn.init.kaiming_uniform_(block[0].weight, nonlinearity="relu")
        torch.nn.init.zeros_(block[0].bias)
    return torch.nn.Sequential(*blocks)


def contrastive_loss(e1, e2, y, margin):
    d = torch.sqrt(((e1 - e2) ** 2).sum(dim=1) + 1e-12)
    return 0.5 * torch.mean(y * d ** 2 + (1 - y) * torch.clamp(margin - d, min=0) ** 2)


def encode(encoder, x, segments):
    if segments == 0:
        return encoder(x)
    # Reentrant checkpointing (the only kind checkpoint_sequential offers in
    # 1.13) skips the backward of a segment whose input does not require grad,
    # which would leave the first layers without gradients. The price: the
    # input gradient of the first Linear is computed although nobody uses it.
    return checkpoint_sequential(encoder, segments, x.detach().requires_grad_())


def model_flops(depth, width, embedding, batch):
    fwd = 2 * batch * (IMAGE_PIXELS * width + (depth - 2) * width * width + width * embedding)  # one branch
    return 2 * 3 * fwd  # both branches; backward is twice the forward


def activation_estimate_bytes(depth, width, batch, segments):
    """Model of the saved activations (fp32), both branches.

    Per branch PyTorch keeps the input (saved by the first Linear) and each
    ReLU output (saved by the ReLU and, as the next Linear's input, shared).
    checkpoint:S keeps the S segment inputs and the last segment whole (it is
    not checkpointed); in backward, one recomputed segment is live at a time.
    The loss keeps one more batch x width tensor, e1 - e2.
    """
    if segments == 0:
        return 4 * batch * (2 * (IMAGE_PIXELS + depth * width) + width)
    size = depth // segments
    last = depth - size * (segments - 1)
    boundaries = IMAGE_PIXELS + (segments - 1) * width
    forward_end = 2 * (boundaries + last * width) + width
    recompute = 2 * boundaries + size * width
    return 4 * batch * max(forward_end, recompute)


def main():
    a = ARGS
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    baseline_rss = max_rss_bytes()

    if a.data == "random":
        batches = random_pairs(a.batch, rng)
    else:
        batches = fashion_mnist_pairs(a.data_dir, a.batch, a.warmup + a.steps, rng)
    if a.depth < 2:
        sys.exit("--depth must be at least 2 (hidden layers and the projection)")
    encoder = make_encoder(a.depth, a.width, a.embedding)
    params = list(encoder.parameters())
    optimizer = torch.optim.SGD(params, lr=a.lr, momentum=0.9)

    losses, times = [], []
    for step in range(a.warmup + a.steps):
        left, right, similar = batches[step % len(batches)]
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = contrastive_loss(encode(encoder, left, a.segments), encode(encoder, right, a.segments),
                                similar, a.margin)
        loss.backward()
        if step == 0 and any(p.grad is None for p in params):
            sys.exit("some parameters got no gradient: checkpointing skipped a segment's backward")
        optimizer.step()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())

    step_time = statistics.median(times[a.warmup:])
    flops = model_flops(a.depth, a.width, a.embedding, a.batch)
    param_bytes = 4 * sum(p.numel() for p in params)
    result = {
        "framework": "pytorch",
        "mode": "store-all" if a.segments == 0 else "checkpoint",
        "segments": a.segments,
        "depth": a.depth,
        "width": a.width,
        "embedding": a.embedding,
        "batch": a.batch,
        "threads": torch.get_num_threads(),
        "step_time_s": step_time,
        "gflops": flops / step_time / 1e9,
        "peak_rss_bytes": max_rss_bytes(),
        "first_loss": losses[0],
        "last_loss": losses[-1],
        # Context for reading peak_rss_bytes: interpreter + libtorch before any
        # tensor, and weights + gradients + momentum.
        "baseline_rss_bytes": baseline_rss,
        "param_state_bytes": 3 * param_bytes,
        "activation_estimate_bytes": activation_estimate_bytes(a.depth, a.width, a.batch, a.segments),
        "data": a.data,
        "lr": a.lr,
        "steps": a.steps,
        "warmup": a.warmup,
        "init": INIT,
        "torch_version": torch.__version__,
    }

    mib = 1 << 20
    print(f"# pytorch {torch.__version__}, {result['threads']} threads, data {a.data}, depth {a.depth} "
          f"width {a.width} batch {a.batch}/branch, lr {a.lr} momentum 0.9, median of {a.steps} steps "
          f"after {a.warmup} warm-up; init: {INIT}")
    print(f"# baseline RSS {baseline_rss / mib:.0f} MiB (interpreter + libtorch), "
          f"weights+grads+momentum {3 * param_bytes / mib:.0f} MiB")
    print(f"{'mode':<14} {'step_s':>8} {'GFLOP/s':>8} {'peak_RSS_MiB':>12} {'act_est_MiB':>11} "
          f"{'first_loss':>10} {'last_loss':>10}")
    print(f"{a.mode:<14} {step_time:8.4f} {result['gflops']:8.1f} {result['peak_rss_bytes'] / mib:12.0f} "
          f"{result['activation_estimate_bytes'] / mib:11.0f} {losses[0]:10.5f} {losses[-1]:10.5f}")
    if a.json:
        with open(a.json, "w") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
