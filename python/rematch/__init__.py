"""rematch: optimal recompute (checkpointing) schedules under a memory budget.

Graphs are given as
  * a dict in a graph file's layout: ``{"chain": {...}}`` or ``{"join": {"branches": [...], "loss": {...}}}``;
  * a path (``str`` or ``os.PathLike``) of a graph file;
  * rotor's per-stage lists as a dict without the ``"chain"`` wrapper:
    ``{"fw": [L], "bw": [L+1], "cw": [L+1], "cbw": [L+1], "ftmp": [L], "btmp": [L+1]}``
    (``bw[L]`` and ``btmp[L]`` are the loss's time and transient memory);
  * a ``rematch.Graph`` returned by ``rematch.graph(...)`` (parsed once, for repeated calls).
Lists may be numpy arrays. Bad input raises ``ValueError`` naming the key and index, e.g.
``chain.cw[3] is negative``.
"""

import json
import math
import os

from . import _core
from ._core import Graph, InfeasibleBudget, InvalidSchedule

__all__ = ["Graph", "InfeasibleBudget", "InvalidSchedule", "Solution", "graph", "least_budget", "revolve",
           "simulate", "solve", "solver_names"]


def _plain(value):
    """JSON-ready copy of `value`: numpy arrays and scalars as Python numbers; a non-finite float as
    its text, so that the graph reader names the key holding it."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def graph(source):
    """A validated ``rematch.Graph`` from any of the accepted forms (see the module's help)."""
    return _to_graph(source)


def _to_graph(source):
    if isinstance(source, Graph):
        return source
    if isinstance(source, (str, os.PathLike)):
        return _core.read_graph_file(os.fspath(source))
    if isinstance(source, dict):
        if "chain" not in source and "join" not in source and "fw" in source:
            source = {"chain": source}
        return _core.parse_graph(json.dumps(_plain(source)))
    raise TypeError("graph must be a dict, a graph file path or a rematch.Graph (got %s)" % type(source).__name__)


class Solution:
    """A schedule and what the simulator measured on it. ``to_dict()`` is the object
    ``rematch solve --format json`` prints."""

    def __init__(self, text):
        self._text = text
        self._dict = json.loads(text)

    solver = property(lambda self: self._dict["solver"])
    exact = property(lambda self: self._dict["exact"], doc="proven optimal over every op sequence")
    memory_limit = property(lambda self: self._dict["memory_limit"])
    makespan = property(lambda self: self._dict["makespan"], doc="replayed by the simulator")
    peak_memory = property(lambda self: self._dict["peak_memory"], doc="replayed by the simulator")
    method = property(lambda self: self._dict["method"])
    store_all_makespan = property(lambda self: self._dict["store_all_makespan"])
    overhead_pct = property(lambda self: self._dict["overhead_pct"])
    ops = property(lambda self: self._dict["ops"],
                   doc='the ops, e.g. {"op": "F_ck", "branch": 0, "stage": 3}, {"op": "loss"}')

    def to_dict(self):
        return json.loads(self._text)

    def to_json(self):
        return self._text

    def __repr__(self):
        return "<rematch.Solution %s: makespan %g, peak %g, %d ops%s>" % (
            self.solver, self.makespan, self.peak_memory, len(self.ops), ", exact" if self.exact else "")


def solve(graph, budget, solver="optimal", *, slots=0, certify_states=1_000_000, work_limit=6e9):
    """The schedule of `solver` within `budget` (the graph's units). Raises InfeasibleBudget (with
    ``.min_memory``) below the least budget, ValueError for bad input; Ctrl-C interrupts it."""
    return Solution(_core.solve(_to_graph(graph), float(budget), str(solver), int(slots), int(certify_states),
                                float(work_limit)))


def simulate(graph, ops, budget=math.inf):
    """Replays `ops` (a list of op dicts, a Solution, or a dict with "ops") and returns
    ``{"makespan": T, "peak_memory": P}``; an invalid op raises InvalidSchedule (``.index``, ``.reason``)."""
    if isinstance(ops, Solution):
        ops = ops.ops
    schedule = ops if isinstance(ops, dict) else {"ops": list(ops)}
    makespan, peak = _core.simulate(_to_graph(graph), json.dumps(_plain(schedule)), float(budget))
    return {"makespan": makespan, "peak_memory": peak}


def least_budget(graph):
    """The least budget at which the optimal solver finds a schedule (Ctrl-C interrupts it)."""
    return _core.least_budget(_to_graph(graph))


def revolve(steps, snaps):
    """Binomial checkpointing for `steps` steps and `snaps` snapshots, as ``rematch revolve --format
    json`` prints it: ``{"steps", "snaps", "advances", "actions": [{"action", "capo", "check"}, ...]}``."""
    advances, actions = _core.revolve(int(steps), int(snaps))
    return {"steps": int(steps), "snaps": int(snaps), "advances": advances,
            "actions": [{"action": a, "capo": capo, "check": check} for a, capo, check in actions]}


def solver_names():
    return _core.solver_names()
