"""rematch synth-sequences and rematch train --offsets on ragged sequence data, through the
command line.

numpy is the independent reader of what synth-sequences writes (the ragged layout of
docs/sequences.md); ragged data written by numpy trains, the report's figures hold together
(every epoch's arena peak within the budget), and bad inputs end with the documented status
and one line naming the problem.
"""
import json
import os
import subprocess

import numpy as np
import pytest

REMATCH = os.environ["REMATCH_CLI"]
MODEL = os.path.join(os.environ["REMATCH_SOURCE_DIR"], "examples", "models", "siamese-sequences.json")


def run(*args):
    return subprocess.run([REMATCH, *map(str, args)], capture_output=True, text=True, timeout=600)


def ragged(d, n=96, channels=4, seed=0):
    """numpy-written ragged data: lengths 8..400, two classes by the sign of a channel's mean."""
    rng = np.random.default_rng(seed)
    lengths = np.concatenate([[8, 400], rng.integers(8, 160, size=n - 2)])
    y = rng.integers(0, 2, size=n)
    seqs = [rng.normal(size=(l, channels)).astype(np.float32) + (0.5 if c else -0.5) * np.eye(channels, dtype=np.float32)[0]
            for l, c in zip(lengths, y)]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    np.save(d / "v.npy", np.concatenate(seqs))
    np.save(d / "o.npy", offsets)
    np.save(d / "y.npy", y.astype(np.int64))
    return lengths


def train(d, *extra):
    return run("train", "--model", MODEL, "--data", d / "v.npy", "--offsets", d / "o.npy", "--labels", d / "y.npy",
               "--batch", 8, *extra)


def test_synth_sequences_writes_the_ragged_layout_numpy_reads(tmp_path):
    r = run("synth-sequences", "-o", tmp_path, "--sequences", 50, "--channels", 3, "--classes", 5,
            "--min-length", 10, "--max-length", 300, "--seed", 4)
    assert r.returncode == 0, r.stderr
    v, o, y = (np.load(tmp_path / f) for f in ("values.npy", "offsets.npy", "labels.npy"))
    assert v.dtype == np.float32 and v.shape[1] == 3
    assert o[0] == 0 and o[-1] == v.shape[0] and len(o) == 51 and np.all(np.diff(o) >= 10) and np.all(np.diff(o) <= 300)
    assert sorted(set(y.tolist())) == [0, 1, 2, 3, 4]
    again = tmp_path / "again"
    again.mkdir()
    assert run("synth-sequences", "-o", again, "--sequences", 50, "--channels", 3, "--classes", 5,
               "--min-length", 10, "--max-length", 300, "--seed", 4).returncode == 0
    assert np.array_equal(np.load(again / "values.npy"), v)


def test_numpy_ragged_data_trains_within_the_budget_with_a_prediction_per_epoch(tmp_path):
    lengths = ragged(tmp_path)
    assert lengths.max() >= 20 * lengths.min()
    r = train(tmp_path, "--memory", "8MiB", "--buckets", 4, "--epochs", 2, "--report", tmp_path / "r.json",
              "--checkpoint", tmp_path / "w.npz")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("predicted") >= 2 and r.stdout.count("measured") >= 2
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["buckets"]) == 4 and report["buckets"][-1]["length"] == 400
    for e in report["epochs"]:
        assert e["arena_peak"] <= report["budget"]
        assert e["predicted_peak"] <= report["budget"]
        assert e["predicted_epoch_s"] > 0 and e["measured_epoch_s"] > 0
    w = np.load(tmp_path / "w.npz")
    assert w["encoders.tcn.layers.0.weight"].shape == (3 * 32, 4)


def test_given_bucket_edges_must_cover_the_longest_sequence(tmp_path):
    ragged(tmp_path)
    r = train(tmp_path, "--memory", "8MiB", "--bucket-edges", "64,128")
    assert r.returncode == 3
    assert "400" in r.stderr and "128" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_budget_too_small_for_the_longest_bucket_exits_2_naming_the_least_budget(tmp_path):
    ragged(tmp_path)
    r = train(tmp_path, "--memory", "256KiB", "--buckets", 3)
    assert r.returncode == 2, r.stderr
    assert "least feasible budget" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    least = int(r.stderr.rsplit("=", 1)[1].split()[0])
    assert train(tmp_path, "--memory", least, "--buckets", 3).returncode == 0


@pytest.mark.parametrize("offsets, problem", [
    ([1, 5, 9], "start at 0"),
    ([0, 5, 5], "increase strictly"),
    ([0, 5, 8], "last offset"),
])
def test_broken_offsets_exit_3_naming_the_file(tmp_path, offsets, problem):
    ragged(tmp_path)
    np.save(tmp_path / "v.npy", np.zeros((9, 4), np.float32))
    np.save(tmp_path / "o.npy", np.array(offsets, np.int64))
    np.save(tmp_path / "y.npy", np.array([0, 1], np.int64))
    r = train(tmp_path, "--memory", "8MiB")
    assert r.returncode == 3
    assert problem in r.stderr and "o.npy" in r.stderr


def test_a_model_that_keeps_the_length_is_refused(tmp_path):
    ragged(tmp_path)
    m = json.loads(open(MODEL).read())
    layers = m["encoders"]["tcn"]["layers"]
    layers[-2] = {"type": "flatten"}
    (tmp_path / "m.json").write_text(json.dumps(m))
    r = run("train", "--model", tmp_path / "m.json", "--data", tmp_path / "v.npy", "--offsets", tmp_path / "o.npy",
            "--labels", tmp_path / "y.npy", "--memory", "8MiB")
    assert r.returncode == 3
    assert "encoders.tcn.layers[10]" in r.stderr, r.stderr


def test_offsets_must_match_the_values_files(tmp_path):
    ragged(tmp_path)
    r = run("train", "--model", MODEL, "--pairs", tmp_path / "v.npy", tmp_path / "v.npy", "--labels", tmp_path / "y.npy",
            "--offsets", tmp_path / "o.npy", "--memory", "8MiB")
    assert r.returncode == 3 and "1 offsets files for 2 values files" in r.stderr
