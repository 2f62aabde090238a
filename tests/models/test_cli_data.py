"""rematch train / embed / evaluate on .npy data, through the command line.

Independent references: numpy reads every file rematch writes, and a numpy forward pass of the
saved weights reproduces the embeddings. Bad inputs end with a documented status and one line
on stderr naming the file. The last test trains on a data file larger than the process's
address-space limit (prlimit --as), to a falling loss.
"""
import json
import os
import re
import subprocess

import numpy as np
import pytest

REMATCH = os.environ["REMATCH_CLI"]
FEATURES = 16
MODEL = {
    "name": "tiny-siamese",
    "branches": [{"name": "left", "input": {"features": FEATURES}, "encoder": "mlp"},
                 {"name": "right", "input": {"features": FEATURES}, "encoder": "mlp"}],
    "encoders": {"mlp": {"layers": [{"type": "linear", "out": 24, "activation": "relu"},
                                     {"type": "linear", "out": 8}]}},
    "loss": {"type": "contrastive", "margin": 1.0},
}
CLASSIFIER = {
    "name": "tiny-classifier",
    "branches": [{"name": "x", "input": {"features": FEATURES}, "encoder": "mlp"}],
    "encoders": {"mlp": {"layers": [{"type": "linear", "out": 24, "activation": "relu"},
                                     {"type": "linear", "out": 4}]}},
    "loss": {"type": "softmax_cross_entropy", "classes": 4},
}


def clusters(n, features, seed, classes=4, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(0).normal(size=(classes, features)).astype(np.float32)
    y = rng.integers(0, classes, size=n)
    x = centers[y] + 0.3 * rng.normal(size=(n, features)).astype(np.float32)
    return x.astype(dtype), y.astype(np.int64)


def run(*args, limit=None):
    cmd = [REMATCH, *map(str, args)]
    if limit:
        cmd = ["prlimit", f"--as={limit}", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.fixture
def files(tmp_path):
    x, y = clusters(512, FEATURES, 1)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "m.json").write_text(json.dumps(MODEL))
    (tmp_path / "c.json").write_text(json.dumps(CLASSIFIER))
    return tmp_path


def train(d, *extra, steps=3):
    return run("train", "--model", d / "m.json", "--data", d / "x.npy", "--labels", d / "y.npy",
               "--batch", 32, "--memory", "1MiB", "--steps", steps, "--profile-repeats", 1, *extra)


def test_weights_load_in_numpy_and_reproduce_the_embeddings(files):
    r = train(files, "--split", 0.25, "--checkpoint", files / "w.npz")
    assert r.returncode == 0, r.stderr
    assert "pairs: ROC AUC" in r.stdout
    w = np.load(files / "w.npz")
    assert sorted(w.files) == sorted(f"encoders.mlp.layers.{i}.{p}" for i in (0, 1) for p in ("weight", "bias"))
    r = run("embed", "--model", files / "m.json", "--weights", files / "w.npz", "--data", files / "x.npy",
            "-o", files / "e.npy", "--memory", "64KiB")
    assert r.returncode == 0, r.stderr
    x = np.load(files / "x.npy")
    h = np.maximum(x @ w["encoders.mlp.layers.0.weight"] + w["encoders.mlp.layers.0.bias"], 0)
    reference = h @ w["encoders.mlp.layers.1.weight"] + w["encoders.mlp.layers.1.bias"]
    e = np.load(files / "e.npy")
    assert e.shape == (512, 8) and e.dtype == np.float32
    np.testing.assert_allclose(e, reference, rtol=1e-4, atol=1e-4)
    r = run("evaluate", "--model", files / "m.json", "--weights", files / "w.npz", "--data", files / "x.npy",
            "--labels", files / "y.npy")
    assert r.returncode == 0, r.stderr
    assert re.match(r"512 pairs: ROC AUC [0-9.]+, verification accuracy [0-9.]+ at distance", r.stdout), r.stdout
    assert sorted(os.listdir(files)) == ["c.json", "e.npy", "m.json", "w.npz", "x.npy", "y.npy"]


def test_resume_continues_from_the_saved_weights(files):
    assert train(files, "--checkpoint", files / "w.npz").returncode == 0
    r = train(files, "--resume", files / "w.npz", "--checkpoint", files / "w2.npz", steps=0)
    assert r.returncode == 0, r.stderr
    a, b = np.load(files / "w.npz"), np.load(files / "w2.npz")
    for k in a.files:
        assert np.array_equal(a[k], b[k])


def test_classifier_trains_from_labels_and_reports_top1(files):
    r = run("train", "--model", files / "c.json", "--data", files / "x.npy", "--labels", files / "y.npy",
            "--test-data", files / "x.npy", "--test-labels", files / "y.npy", "--batch", 32, "--memory", "1MiB",
            "--steps", 40, "--lr", 0.01, "--profile-repeats", 1, "--checkpoint", files / "w.npz")
    assert r.returncode == 0, r.stderr
    r = run("evaluate", "--model", files / "c.json", "--weights", files / "w.npz", "--data", files / "x.npy",
            "--labels", files / "y.npy")
    assert r.returncode == 0, r.stderr
    accuracy = float(re.match(r"512 samples: top-1 accuracy ([0-9.]+)", r.stdout).group(1))
    w = np.load(files / "w.npz")
    x, y = np.load(files / "x.npy"), np.load(files / "y.npy")
    h = np.maximum(x @ w["encoders.mlp.layers.0.weight"] + w["encoders.mlp.layers.0.bias"], 0)
    logits = h @ w["encoders.mlp.layers.1.weight"] + w["encoders.mlp.layers.1.bias"]
    assert accuracy == pytest.approx(np.mean(logits.argmax(1) == y), abs=1e-6)
    assert accuracy > 0.5  # four separable clusters


def test_eval_every_reports_the_held_out_loss_numpy_computes(files):
    # One held-out batch holding every held-out sample: its mean loss is the whole set's, whatever
    # the order the batch is drawn in.
    x, y = clusters(32, FEATURES, 4)
    np.save(files / "tx.npy", x)
    np.save(files / "ty.npy", y)
    r = run("train", "--model", files / "c.json", "--data", files / "x.npy", "--labels", files / "y.npy",
            "--test-data", files / "tx.npy", "--test-labels", files / "ty.npy", "--batch", 32, "--memory", "1MiB",
            "--steps", 3, "--eval-every", 2, "--eval-batches", 1, "--lr", 0.01, "--profile-repeats", 1,
            "--checkpoint", files / "w.npz", "--report", files / "r.json")
    assert r.returncode == 0, r.stderr
    curve = json.loads((files / "r.json").read_text())["eval_losses"]
    assert [step for step, _ in curve] == [0, 2, 3]
    w = np.load(files / "w.npz")
    h = np.maximum(x @ w["encoders.mlp.layers.0.weight"] + w["encoders.mlp.layers.0.bias"], 0)
    logits = (h @ w["encoders.mlp.layers.1.weight"] + w["encoders.mlp.layers.1.bias"]).astype(np.float64)
    top = logits.max(1)
    cross_entropy = np.mean(top + np.log(np.exp(logits - top[:, None]).sum(1)) - logits[np.arange(32), y])
    assert curve[-1][1] == pytest.approx(cross_entropy, rel=1e-5)
    assert f"held-out   step 3  loss {curve[-1][1]:.5f}" in r.stdout
    r = train(files, "--eval-every", 1)
    assert r.returncode == 3 and r.stderr.count("\n") == 1, r.stderr
    assert "--eval-every needs a held-out set" in r.stderr


def test_explicit_pairs_and_triplets_train(files):
    x, y = clusters(256, FEATURES, 2)
    x2, y2 = clusters(256, FEATURES, 3)
    np.save(files / "x1.npy", x)
    np.save(files / "x2.npy", x2.astype(np.float16))
    np.save(files / "same.npy", (y == y2).astype(np.uint8))
    r = run("train", "--model", files / "m.json", "--pairs", files / "x1.npy", files / "x2.npy", "--labels",
            files / "same.npy", "--split", 0.5, "--batch", 16, "--memory", "1MiB", "--steps", 2, "--profile-repeats", 1)
    assert r.returncode == 0, r.stderr
    assert "pairs: ROC AUC" in r.stdout
    r = run("train", "--model", files / "m.json", "--triplets", files / "x1.npy", files / "x2.npy", files / "x1.npy",
            "--batch", 16, "--memory", "1MiB", "--steps", 2, "--profile-repeats", 1)
    assert r.returncode == 0, r.stderr


def corrupt(path, out, offset_from_data, data):
    b = bytearray(path.read_bytes())
    at = b.find(b"\x93NUMPY") + 128 + offset_from_data
    b[at:at + len(data)] = data
    out.write_bytes(bytes(b))


@pytest.mark.parametrize("case", ["flip", "garbage", "nan", "shape", "dtype", "labels", "fortran", "missing"])
def test_bad_inputs_end_with_one_line_naming_the_file(files, case):
    assert train(files, "--checkpoint", files / "w.npz").returncode == 0
    w = files / "w.npz"
    args = ["--data", files / "x.npy", "--labels", files / "y.npy"]
    named = files / "bad.npz"
    if case == "flip":
        b = bytearray(w.read_bytes())
        b[b.find(b"\x93NUMPY") + 130] ^= 0x04
        named.write_bytes(bytes(b))
        problem = "CRC-32 mismatch"
    elif case == "garbage":
        corrupt(w, named, 4, b"\xde\xad\xbe\xef")
        problem = "CRC-32 mismatch"
    elif case == "nan":
        a = dict(np.load(w))
        a["encoders.mlp.layers.1.bias"][0, 3] = np.nan
        np.savez(named, **a)
        problem = "non-finite value"
    elif case == "shape":
        np.save(files / "bad.npy", np.zeros((512, FEATURES + 1), np.float32))
        args, named, problem = ["--data", files / "bad.npy", "--labels", files / "y.npy"], files / "bad.npy", "the model's input is (16,)"
    elif case == "dtype":
        np.save(files / "bad.npy", np.zeros((512, FEATURES), np.float64))
        args, named, problem = ["--data", files / "bad.npy", "--labels", files / "y.npy"], files / "bad.npy", "unsupported dtype '<f8'"
    elif case == "labels":
        np.save(files / "bad.npy", np.full(512, -1, np.int64))
        args, named, problem = ["--data", files / "x.npy", "--labels", files / "bad.npy"], files / "bad.npy", "label -1 at index 0 is out of range"
    elif case == "fortran":
        np.save(files / "bad.npy", np.asfortranarray(np.zeros((512, FEATURES), np.float32)))
        args, named, problem = ["--data", files / "bad.npy", "--labels", files / "y.npy"], files / "bad.npy", "Fortran order"
    else:
        named, problem = files / "none.npz", "cannot open"
    model = files / "m.json"
    weights = named if named.suffix == ".npz" else w
    for cmd in (["evaluate", "--model", model, "--weights", weights, *args],
                ["train", "--model", model, "--resume", weights, *args, "--batch", 32, "--memory", "1MiB",
                 "--steps", 1, "--profile-repeats", 1]):
        r = run(*cmd)
        assert r.returncode == 3, (cmd, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and str(named) in lines[0] and problem in lines[0], r.stderr


def test_embed_refuses_a_budget_below_one_sample_and_leaves_no_file(files):
    assert train(files, "--checkpoint", files / "w.npz").returncode == 0
    r = run("embed", "--model", files / "m.json", "--weights", files / "w.npz", "--data", files / "x.npy",
            "-o", files / "e.npy", "--memory", "16")
    assert r.returncode == 2, r.stderr
    assert "least feasible budget" in r.stderr
    assert not any(n.startswith("e.npy") for n in os.listdir(files))


@pytest.mark.skipif(os.environ.get("REMATCH_SANITIZE") == "1",
                    reason="AddressSanitizer reserves terabytes of shadow address space: no process limit fits it")
def test_a_data_file_larger_than_the_address_space_limit_trains_to_a_falling_loss(tmp_path):
    limit = 160 << 20
    features, rows = 1024, 48 << 10  # 192 MiB of float32 samples, above the limit
    x = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(rows, features))
    y = np.empty(rows, np.int64)
    for begin in range(0, rows, 8192):
        x[begin:begin + 8192], y[begin:begin + 8192] = clusters(8192, features, begin)
    x.flush()
    del x
    np.save(tmp_path / "y.npy", y)
    assert os.path.getsize(tmp_path / "big.npy") > limit
    model = json.loads(json.dumps(MODEL))
    for b in model["branches"]:
        b["input"]["features"] = features
    (tmp_path / "m.json").write_text(json.dumps(model))
    r = run("train", "--model", tmp_path / "m.json", "--data", tmp_path / "big.npy", "--labels", tmp_path / "y.npy",
            "--batch", 64, "--memory", "4MiB", "--steps", 30, "--lr", 0.003, "--profile-repeats", 1, limit=limit)
    assert r.returncode == 0, r.stderr
    losses = [float(m) for m in re.findall(r"^step \d+/30\s+loss ([0-9.]+)", r.stdout, re.M)]
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < np.mean(losses[:5]), losses


def test_an_unwritable_checkpoint_is_refused_before_training(files):
    r = train(files, "--checkpoint", files / "no" / "w.npz", steps=1000)
    assert r.returncode == 3, r.stderr
    assert str(files / "no" / "w.npz") in r.stderr and "step" not in r.stdout
