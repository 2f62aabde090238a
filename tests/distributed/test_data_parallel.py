"""Data-parallel `rematch train` under mpirun -np 2 against independent references: the
one-process run on the same global batches (weights within the fp32 tolerance of
docs/distributed.md), itself (bitwise), and the fault behaviour the CLI documents."""
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

REMATCH = os.environ["REMATCH_CLI"]
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe"]
# Small models, a few steps; SGD so that weight differences stay proportional to gradient ones
# (Adam's normalisation magnifies them where a gradient is near zero).
SIAMESE = ["--model", "siamese-mlp", "--depth", "4", "--width", "64", "--batch", "32"]
CROSS_MODAL = ["--model", "cross-modal", "--depth", "3", "--width", "8", "--batch", "16"]
COMMON = ["--optimizer", "sgd", "--no-eval", "--profile-repeats", "1"]
BUDGET = ["--memory", "8MiB"]
# docs/distributed.md: the tolerance of an N-process run against the one-process run.
ATOL, RTOL = 1e-5, 1e-4


def train(args, ranks=None, timeout=120):
    cmd = ([*MPIRUN, "-np", str(ranks)] if ranks else []) + [REMATCH, "train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def weights(path):
    """The parameter values of a weight file (.npz, one array per tensor), in name order."""
    with np.load(path) as npz:
        return np.concatenate([npz[name].ravel() for name in sorted(npz.files)])


def assert_close(path_a, path_b):
    a, b = weights(path_a), weights(path_b)
    assert a.shape == b.shape
    worst = float(np.max(np.abs(a - b) - (ATOL + RTOL * np.abs(a))))
    assert worst <= 0, f"weights differ beyond {ATOL} + {RTOL} |w| by {worst}"


@pytest.mark.parametrize("model", [SIAMESE, CROSS_MODAL], ids=["siamese", "cross_modal"])
def test_two_processes_match_one_process_within_tolerance(tmp_path, model):
    args = [*model, *COMMON, *BUDGET, "--steps", "3"]
    one = ok(train([*args, "--checkpoint", str(tmp_path / "one.npz")]))
    two = ok(train([*args, "--checkpoint", str(tmp_path / "two.npz")], ranks=2))
    assert_close(tmp_path / "one.npz", tmp_path / "two.npz")
    # The printed losses are the global batch's mean in both runs.
    losses = lambda out: [float(l.split()[3]) for l in out.splitlines() if l.startswith("step ")]
    assert losses(two.stdout) == pytest.approx(losses(one.stdout), rel=RTOL, abs=ATOL)


def test_two_process_runs_give_bitwise_the_same_weights(tmp_path):
    args = [*SIAMESE, *COMMON, *BUDGET, "--steps", "3"]
    ok(train([*args, "--checkpoint", str(tmp_path / "a.npz")], ranks=2))
    ok(train([*args, "--checkpoint", str(tmp_path / "b.npz")], ranks=2))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_resume_with_another_process_count(tmp_path):
    args = [*SIAMESE, *COMMON, *BUDGET]
    ok(train([*args, "--steps", "2", "--checkpoint", str(tmp_path / "start.npz")]))
    resumed = ["--resume", str(tmp_path / "start.npz")]
    ok(train([*args, *resumed, "--steps", "2", "--checkpoint", str(tmp_path / "two.npz")], ranks=2))
    ok(train([*args, *resumed, "--steps", "2", "--checkpoint", str(tmp_path / "one.npz")]))
    assert_close(tmp_path / "one.npz", tmp_path / "two.npz")
    # And back: two processes' weights resume in one.
    ok(train([*args, "--resume", str(tmp_path / "two.npz"), "--steps", "1"]))


def test_report_counts_the_processes_and_global_figures(tmp_path):
    report = tmp_path / "r.json"
    ok(train([*SIAMESE, *COMMON, *BUDGET, "--steps", "2", "--report", str(report)], ranks=2))
    import json
    r = json.loads(report.read_text())
    assert r["ranks"] == 2 and r["batch"] == 32
    total = sum(r["step_seconds"])
    assert r["samples_per_s"] == pytest.approx(2 * 32 / total)
    assert len(r["exposed_communication_seconds"]) == 2
    assert r["exchange_buffer_bytes"] > 0 and r["arena_peak"] >= r["exchange_buffer_bytes"]


def mpmd(good, bad):
    """Rank 0 runs `good`, rank 1 `bad`: a fault only one process sees."""
    cmd = [*MPIRUN, "-np", "1", REMATCH, "train", *good, ":", "-np", "1", REMATCH, "train", *bad]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "fault, status, words",
    [([*BUDGET, "--fashion-mnist", "/nonexistent"], 3, "/nonexistent"),
     (["--memory", "16KiB"], 2, "least feasible budget")],
    ids=["missing_data", "infeasible_budget"])
def test_bad_input_on_one_rank_ends_every_rank_with_the_same_error(fault, status, words):
    args = [*SIAMESE, *COMMON, "--steps", "2"]
    r = mpmd([*args, *BUDGET], [*args, *fault])
    assert r.returncode == status, r.stdout + r.stderr
    ours = [l for l in r.stderr.splitlines() if l.startswith("rematch train:")]
    assert len(ours) == 1 and ours[0].startswith("rematch train: rank 1: ") and words in ours[0], r.stderr
    assert "step 1/" not in r.stdout


def rank_pid(mpirun_pid, rank):
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if ppid == mpirun_pid and f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
            return int(proc.name)
    return None


def signal_rank_1_mid_run(args, checkpoint, sig):
    """Starts a long two-process run, sends `sig` to rank 1 once a checkpoint exists, and returns
    the job's (status, stderr); the job must end by itself within 60 s."""
    job = subprocess.Popen([*MPIRUN, "-np", "2", REMATCH, "train", *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not checkpoint.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpoint.exists(), "no checkpoint within 60 s"
        victim = rank_pid(job.pid, 1)
        assert victim is not None
        os.kill(victim, sig)
        _, err = job.communicate(timeout=60)  # bounded: no hang
    finally:
        if job.poll() is None:
            job.kill()
    return job.returncode, err


def long_run(checkpoint):
    return [*SIAMESE, *COMMON, *BUDGET, "--steps", "100000", "--checkpoint", str(checkpoint),
            "--checkpoint-every", "1"]


def test_a_rank_killed_mid_run_ends_the_job_and_leaves_the_checkpoint_valid(tmp_path):
    checkpoint = tmp_path / "c.npz"
    status, err = signal_rank_1_mid_run(long_run(checkpoint), checkpoint, signal.SIGKILL)
    assert status != 0
    assert "rank 1" in err and "signal 9" in err, err
    ok(train([*SIAMESE, *COMMON, *BUDGET, "--steps", "0", "--resume", str(checkpoint)]))


def test_a_rank_that_stops_answering_ends_the_job_after_the_timeout(tmp_path):
    checkpoint = tmp_path / "c.npz"
    args = [*long_run(checkpoint), "--comm-timeout", "3"]
    status, err = signal_rank_1_mid_run(args, checkpoint, signal.SIGSTOP)
    assert status == 3, err
    assert "rematch train: rank 0: no gradients from the other processes within 3 s" in err, err
    ok(train([*SIAMESE, *COMMON, *BUDGET, "--steps", "0", "--resume", str(checkpoint)]))
