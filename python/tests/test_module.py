"""The solver face of the Python module against the command line it mirrors: the same JSON, the
same errors (as ValueError / InfeasibleBudget / InvalidSchedule), and Ctrl-C stopping a solve."""
import _thread
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

import rematch

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "conv_chain.json"
CLI = os.environ.get("REMATCH_CLI")

CHAIN = {"fw": [2, 3, 1], "bw": [3, 4, 2, 1], "cw": [2, 4, 3, 1], "cbw": [2, 6, 5, 2],
         "ftmp": [0, 1, 0], "btmp": [1, 0, 1, 0]}


def long_chain(n):
    return {"fw": [1 + i % 3 for i in range(n)], "bw": [2 + i % 5 for i in range(n + 1)],
            "cw": [2 + i % 4 for i in range(n + 1)], "cbw": [3 + i % 4 + i % 3 for i in range(n + 1)],
            "ftmp": [i % 2 for i in range(n)], "btmp": [i % 3 for i in range(n + 1)]}


def cli_json(*args):
    out = subprocess.run([CLI, *args, "--format", "json"], capture_output=True, text=True)
    return out.returncode, json.loads(out.stdout)


@pytest.mark.skipif(CLI is None, reason="REMATCH_CLI not set")
@pytest.mark.parametrize("solver", ["optimal", "persistent", "recompute-all", "revolve"])
def test_to_dict_is_what_the_cli_prints(solver):
    solution = rematch.solve(EXAMPLE, 900, solver)
    status, printed = cli_json("solve", str(EXAMPLE), "--memory", "900", "--solver", solver)
    assert status == 0
    assert solution.to_dict() == printed
    assert json.loads(solution.to_json()) == printed
    assert (solution.makespan, solution.peak_memory, solution.exact, solution.method, solution.ops) == (
        printed["makespan"], printed["peak_memory"], printed["exact"], printed["method"], printed["ops"])
    assert {"store_all_makespan", "overhead_pct"} <= printed.keys()


@pytest.mark.skipif(CLI is None, reason="REMATCH_CLI not set")
def test_least_budget_and_revolve_match_the_cli():
    _, info = cli_json("info", str(EXAMPLE))
    assert rematch.least_budget(str(EXAMPLE)) == info["min_memory"]
    _, printed = cli_json("revolve", "--steps", "17", "--snaps", "3")
    assert rematch.revolve(17, 3) == printed


def test_graph_forms_agree():
    as_file = rematch.solve(EXAMPLE, 900)
    as_dict = rematch.solve(json.loads(EXAMPLE.read_text()), 900)
    as_str = rematch.solve(str(EXAMPLE), 900)
    assert as_file.to_dict() == as_dict.to_dict() == as_str.to_dict()
    rotor = rematch.solve(CHAIN, 20)
    wrapped = rematch.solve({"chain": CHAIN}, 20)
    assert rotor.to_dict() == wrapped.to_dict()


def test_numpy_lists_are_accepted():
    np = pytest.importorskip("numpy")
    graph = {k: np.array(v, dtype=np.float64) for k, v in CHAIN.items()}
    assert rematch.solve(graph, 20).to_dict() == rematch.solve(CHAIN, 20).to_dict()


def test_simulate_replays_a_solution():
    solution = rematch.solve(CHAIN, 20)
    assert rematch.simulate(CHAIN, solution.ops, 20) == {"makespan": solution.makespan,
                                                         "peak_memory": solution.peak_memory}
    assert rematch.simulate(CHAIN, solution) == rematch.simulate(CHAIN, {"ops": solution.ops})


def test_infeasible_budget_carries_the_least_budget():
    least = rematch.least_budget(CHAIN)
    with pytest.raises(rematch.InfeasibleBudget) as caught:
        rematch.solve(CHAIN, least - 1)
    assert caught.value.min_memory == least
    assert isinstance(caught.value, ValueError)
    assert rematch.solve(CHAIN, least).peak_memory <= least


@pytest.mark.parametrize("graph, message", [
    ({"chain": {**CHAIN, "cw": [2, 4, -3, 1]}}, "chain.cw[2] is negative"),
    ({"chain": {**CHAIN, "cbw": [2, 6, 5]}}, "chain.cbw"),
    ({"chain": {**CHAIN, "fw": [2, float("nan"), 1]}}, "chain.fw[1]"),
    ({"join": {"branches": [{"fw": [1], "bw": [1], "cw": [1, 1], "cbw": [1, 1], "btmp": [0]}],
               "loss": {"time": 1, "tmp": 0}}}, "join.branches[0].ftmp"),
    ({"nothing": 1}, "chain"),
])
def test_bad_graphs_name_the_key_and_index(graph, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        rematch.solve(graph, 100)


def test_bad_arguments():
    with pytest.raises(ValueError, match="cannot open file"):
        rematch.solve("/nonexistent/graph.json", 10)
    with pytest.raises(ValueError, match="unknown solver"):
        rematch.solve(CHAIN, 100, "fastest")
    with pytest.raises(ValueError, match="budget"):
        rematch.solve(CHAIN, -1)
    with pytest.raises(TypeError):
        rematch.solve(42, 100)
    with pytest.raises(ValueError, match="steps"):
        rematch.revolve(0, 2)


def test_invalid_schedules_name_the_op():
    with pytest.raises(rematch.InvalidSchedule) as caught:
        rematch.simulate(CHAIN, [{"op": "F_ck", "stage": 0}, {"op": "B", "stage": 1}])
    assert caught.value.index == 1 and "y_2" in caught.value.reason
    with pytest.raises(ValueError, match=r"ops\[0\]\.op: unknown op"):
        rematch.simulate(CHAIN, [{"op": "jump", "stage": 0}])
    solution = rematch.solve(CHAIN, 100)
    with pytest.raises(rematch.InvalidSchedule, match="over the memory limit"):
        rematch.simulate(CHAIN, solution.ops, solution.peak_memory - 1)


def interrupt_after(seconds):
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


def test_ctrl_c_interrupts_a_solve_and_other_threads_run_meanwhile():
    # Without the interrupt this solve fills its tables for many seconds.
    graph = rematch.graph(long_chain(160))
    ticks = []
    stop = threading.Event()
    ticker = threading.Thread(target=lambda: [ticks.append(1) or time.sleep(0.01) for _ in iter(stop.is_set, True)])
    ticker.start()
    timer = interrupt_after(0.5)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        rematch.solve(graph, 400, slots=2000, certify_states=0, work_limit=1e15)
    elapsed = time.monotonic() - start
    stop.set()
    ticker.join()
    timer.join()
    assert len(ticks) > 5  # the GIL was released during the solve
    assert elapsed < 5
    assert rematch.solve(CHAIN, 20).peak_memory <= 20  # the module still works afterwards


def test_sigint_stops_a_solve_in_another_process():
    script = ("import sys, rematch; sys.path.insert(0, %r); from test_module import long_chain; "
              "g = rematch.graph(long_chain(160)); print('ready', flush=True); "
              "rematch.solve(g, 400, slots=2000, certify_states=0, work_limit=1e15); print('finished')"
              % str(pathlib.Path(__file__).parent))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=20)  # uninterrupted, the solve runs far longer
    finally:
        child.kill()
        child.wait()
    assert "finished" not in out
    assert "KeyboardInterrupt" in err
