"""rematch.torch: train a PyTorch chain or join model within a memory budget (bytes) on rematch's
schedules.

    model = rematch.torch.Join([encoder, encoder], head, budget=64 << 20)   # shared encoder
    print(model.plan(x1, x2, label))       # profiles the stages, solves, prints overhead and peak
    loss = model(x1, x2, label); loss.backward(); opt.step()

A chain (``Chain``) is an ``nn.Sequential`` or a list of modules, each one stage; its output is
returned, and the loss is computed outside (it is not part of the budget). A join (``Join``) has k
branches (each an ``nn.Sequential`` or a list of modules; the same object twice is a shared
encoder) and a head called as ``head(out_0, ..., out_{k-1}, *rest)`` that returns the loss, where
``rest`` are the arguments after the k branch inputs.

The schedule is data: ``forward`` runs the schedule's ops up to ``loss`` inside one
``torch.autograd.Function`` and ``backward`` replays the rest, holding exactly the items the
schedule holds (x: a detached tensor; xbar: a stage's output with its autograd graph; y: a
gradient). The executor counts their bytes (tensors plus what autograd saved) and raises
``BudgetExceeded`` if the count ever goes over the budget; ``last_peak`` is the count's maximum in
the last step. Recomputed forwards restore the random state of the stage's first forward (as
``torch.utils.checkpoint`` does), so dropout masks match.
"""

import math
import sys
import time

import torch
from torch import nn

import rematch


class BudgetExceeded(RuntimeError):
    """The executor held more bytes than the budget (the stages' memory differs from the profile)."""


# Where a tensor's bytes live (views share it). The untyped storage is asked for directly:
# Tensor.storage() builds a typed wrapper in Python on every call, and the executor asks for every
# tensor autograd saves. torch >= 2.0 spells it untyped_storage(), torch 1.13 _storage().
_storage = getattr(torch.Tensor, "untyped_storage", None) or torch.Tensor._storage


class _SavedBytes:
    """Counts the bytes autograd saves for backward while active: distinct storages, parameters and
    buffers excluded (they are not activations)."""

    def __init__(self, persistent):
        self.persistent = persistent
        self.storages = {}

    def pack(self, t):
        s = _storage(t)
        if s.data_ptr() not in self.persistent:
            self.storages[s.data_ptr()] = s.nbytes()
        return t

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)

    def total(self, exclude=()):
        skip = {_storage(t).data_ptr() for t in exclude}
        return sum(n for ptr, n in self.storages.items() if ptr not in skip)


def _nbytes(t):
    return t.numel() * t.element_size()


def _stages(modules):
    if isinstance(modules, nn.Sequential):
        return list(modules.children())
    if isinstance(modules, (list, tuple)):
        return list(modules)
    if isinstance(modules, nn.Module):
        return [modules]
    raise TypeError("a branch must be an nn.Sequential, an nn.Module or a list of modules")


def _differentiable(t):
    return t.is_floating_point() or t.is_complex()


class Plan:
    """What ``plan()`` found: the profiled graph (``graph``, the join layout, bytes and seconds), the
    ``solution``, and the predicted peak and overhead."""

    def __init__(self, graph, solution, budget, store_all_peak):
        self.graph = graph
        self.solution = solution
        self.budget = budget
        self.store_all_peak = store_all_peak

    predicted_peak = property(lambda self: self.solution.peak_memory)
    predicted_overhead_pct = property(lambda self: self.solution.overhead_pct)

    def __str__(self):
        mib = 1 << 20
        return ("rematch plan: %s schedule, %d ops; predicted peak %.2f MiB of %.2f MiB (store-all %.2f MiB), "
                "predicted overhead %.1f%% (%s)" % (
                    self.solution.solver, len(self.solution.ops), self.predicted_peak / mib, self.budget / mib,
                    self.store_all_peak / mib, self.predicted_overhead_pct, self.solution.method))


class _Step:
    """One training step's replay of the schedule: the items held and their byte count."""

    def __init__(self, model, inputs):
        self.model = model
        self.ops = model._plan.solution.ops
        self.position = 0
        self.items = {}       # (kind, branch, position) -> tensor, or (input, output) for xbar
        self.sizes = {}       # same keys -> bytes
        self.memory = 0
        self.peak = 0
        self.rng = {}         # (branch, stage) -> CPU random state at its first forward
        self.persistent = model._persistent
        self.input_grads = [None] * len(inputs)
        self.wants_input_grad = [x.requires_grad and _differentiable(x) for x in inputs]
        for j, x in enumerate(inputs):
            self._put(("x", j, 0), x.detach(), _nbytes(x))
        self._note(self.memory)

    def _note(self, peak):
        self.peak = max(self.peak, peak)
        if peak > self.model.budget:
            raise BudgetExceeded("the executor holds %d bytes, over the budget of %d bytes (op %d)" %
                                 (peak, self.model.budget, self.position))

    def _put(self, key, value, size):
        self.items[key] = value
        self.sizes[key] = size
        self.memory += size

    def _take(self, key):
        self.memory -= self.sizes.pop(key)
        return self.items.pop(key)

    def _value(self, j, i):
        if ("x", j, i) in self.items:
            return self.items[("x", j, i)]
        return self.items[("xbar", j, i)][1].detach()

    def _forward(self, j, i, taped):
        stage = self.model._branches[j][i]
        source = self._value(j, i)
        saved = _SavedBytes(self.persistent)
        if taped:
            inp = source.detach()
            if _differentiable(inp) and (i > 0 or self.wants_input_grad[j]):
                inp.requires_grad_(True)
            with torch.enable_grad(), saved.hooks():
                out = self._run(j, i, stage, inp)
            return inp, out, _nbytes(out) + saved.total(exclude=[out])
        with torch.no_grad():
            out = self._run(j, i, stage, source)
        return None, out, _nbytes(out)

    def _run(self, j, i, stage, inp):
        if (j, i) not in self.rng:
            self.rng[(j, i)] = torch.get_rng_state()
            return stage(inp)
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.rng[(j, i)])
            return stage(inp)

    def run_until_loss(self):
        """The ops before `loss`, then `loss`'s own bookkeeping; returns the branch outputs."""
        while self.ops[self.position]["op"] != "loss":
            self._apply(self.ops[self.position])
            self.position += 1
        outputs = []
        for j, branch in enumerate(self.model._branches):
            outputs.append(self._value(j, len(branch)).detach())
        self._note(self.memory + sum(_nbytes(o) for o in outputs))
        return outputs

    def run_after_loss(self, grads):
        for j, branch in enumerate(self.model._branches):
            n = len(branch)
            y = grads[j] if grads[j] is not None else torch.zeros_like(self._value(j, n))
            if ("x", j, n) in self.items:
                self._take(("x", j, n))
            self._put(("y", j, n), y, _nbytes(y))
        self.position += 1
        while self.position < len(self.ops):
            self._apply(self.ops[self.position])
            self.position += 1
        return self.input_grads

    def _apply(self, op):
        kind = op["op"]
        j, i = op.get("branch", 0), op.get("stage", 0)
        if kind == "drop":
            self._take((op["item"], j, i))
        elif kind in ("F_all", "F_ck", "F_none"):
            inp, out, size = self._forward(j, i, kind == "F_all")
            self._note(self.memory + size)
            if kind == "F_all":
                self._put(("xbar", j, i + 1), (inp, out), size)
            else:
                self._put(("x", j, i + 1), out, size)
                if kind == "F_none":
                    self._take(("x", j, i) if ("x", j, i) in self.items else ("xbar", j, i))
        elif kind == "B":
            inp, out = self.items[("xbar", j, i + 1)]
            y = self.items[("y", j, i + 1)]
            if out.requires_grad:
                with torch.enable_grad():
                    torch.autograd.backward(out, y)
            grad = inp.grad if inp.requires_grad else None
            self._note(self.memory + (_nbytes(grad) if grad is not None else 0))
            self._take(("y", j, i + 1))
            self._take(("xbar", j, i + 1))
            if ("x", j, i) in self.items:
                self._take(("x", j, i))
            if i > 0:
                self._put(("y", j, i), grad, _nbytes(grad))
            else:
                self.input_grads[j] = grad
        else:
            raise ValueError("op %r cannot run in the executor" % (op,))


class _Scheduled(torch.autograd.Function):
    # `anchor` requires grad, so that the outputs do even when no input does (parameters are not
    # inputs of the function: B ops accumulate their gradients).
    @staticmethod
    def forward(ctx, step, anchor, *inputs):
        ctx.step = step
        return tuple(step.run_until_loss())

    @staticmethod
    def backward(ctx, *grads):
        step = ctx.step
        input_grads = step.run_after_loss(grads)
        step.model.last_peak = step.peak
        return (None, None, *input_grads)


class _ScheduledModel(nn.Module):
    """Common to Chain and Join: the branches, the budget, plan() and the scheduled forward."""

    def __init__(self, branches, head, budget, solver, runs, solve_options):
        super().__init__()
        self._branches = [_stages(b) for b in branches]
        for branch in self._branches:
            if not branch:
                raise ValueError("a branch needs at least one stage")
        # Distinct module objects once each, so that parameters() lists a shared encoder once.
        unique = []
        for module in [m for branch in self._branches for m in branch]:
            if not any(module is u for u in unique):
                unique.append(module)
        self.stages = nn.ModuleList(unique)
        self.head = head
        self.budget = int(budget)
        self.solver = solver
        self.runs = runs
        self.solve_options = dict(solve_options or {})
        self._plan = None
        self._shapes = None
        self.last_peak = None

    @property
    def _persistent(self):
        return {_storage(t).data_ptr() for t in list(self.parameters()) + list(self.buffers())}

    def _time(self, fn):
        # The least of the runs: other work on the machine only ever adds time, and the schedule's
        # choice of stages to recompute follows their relative costs.
        times = []
        for _ in range(self.runs):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    def _profile_branch(self, j, x):
        """The branch's stages on input x, in `runs` passes over the whole branch after a warm-up
        pass; each stage's times are the least of its passes. A disturbance from outside (another
        process taking a core) lasts longer than one stage's run: in passes it falls on one run of
        several stages rather than on every run of one stage, which the least of the runs then
        drops. One stage's input is held at a time, as in training."""
        n = len(self._branches[j])
        fw, bw = [math.inf] * n, [math.inf] * n
        cw, cbw = [_nbytes(x)], [_nbytes(x)]
        rng = torch.get_rng_state()
        for run in range(1 + self.runs):
            inp = x
            for i, stage in enumerate(self._branches[j]):
                inp = inp.detach()
                if _differentiable(inp):
                    inp.requires_grad_(True)
                if run == 0:  # the warm-up pass measures the bytes
                    saved = _SavedBytes(self._persistent)
                    with torch.enable_grad(), saved.hooks():
                        out = stage(inp)
                    cw.append(_nbytes(out))
                    cbw.append(_nbytes(out) + saved.total(exclude=[out]))
                else:
                    with torch.enable_grad():
                        start = time.perf_counter()
                        out = stage(inp)
                        fw[i] = min(fw[i], time.perf_counter() - start)
                if out.requires_grad:
                    grad = torch.ones_like(out)
                    start = time.perf_counter()
                    out.backward(grad)  # frees the stage's graph; its output is the next input
                    if run > 0:
                        bw[i] = min(bw[i], time.perf_counter() - start)
                else:
                    bw[i] = 0.0
                inp = out
        torch.set_rng_state(rng)
        return {"fw": fw, "bw": bw, "cw": cw, "cbw": cbw, "ftmp": [0] * n, "btmp": [0] * n}, inp.detach()

    def _profile_head(self, outputs, rest):
        if self.head is None:
            return {"time": 0, "tmp": 0}
        rng = torch.get_rng_state()
        outs = [o.detach().requires_grad_(_differentiable(o)) for o in outputs]
        saved = _SavedBytes(self._persistent)
        with torch.enable_grad(), saved.hooks():
            loss = self.head(*outs, *rest)
        tmp = saved.total(exclude=outs)  # the outputs are counted as the branches' x_n

        def run():
            with torch.enable_grad():
                self.head(*outs, *rest).backward()

        run()
        seconds = self._time(run)
        torch.set_rng_state(rng)
        del loss
        return {"time": seconds, "tmp": tmp}

    def _profile(self, branch_inputs, rest):
        """The join-layout graph of the model on these inputs."""
        branches, outputs = [], []
        for j, x in enumerate(branch_inputs):
            twin = next((b for b in range(j) if self._branches[b] == self._branches[j]
                         and branch_inputs[b].shape == x.shape and branch_inputs[b].dtype == x.dtype), None)
            if twin is not None:  # a shared encoder on alike inputs: one profile, identical branches
                branches.append(branches[twin])
                outputs.append(outputs[twin])
                continue
            branch, out = self._profile_branch(j, x)
            branches.append(branch)
            outputs.append(out)
        return {"join": {"branches": branches, "loss": self._profile_head(outputs, rest)}}

    def plan(self, *inputs):
        """Profiles every stage on these inputs, builds the graph, solves within the budget, and
        returns the Plan (also kept for training). Raises rematch.InfeasibleBudget (its min_memory
        in bytes) when the budget is too small."""
        k = len(self._branches)
        if len(inputs) < k:
            raise ValueError("plan() needs one input per branch (%d), got %d" % (k, len(inputs)))
        branch_inputs, rest = inputs[:k], inputs[k:]
        # Profiling runs backward passes: the parameters' gradients are set aside, then put back.
        grads = [(p, p.grad) for p in self.parameters()]
        for p, _ in grads:
            p.grad = None
        try:
            graph = self._profile(branch_inputs, rest)
        finally:
            for p, g in grads:
                p.grad = g
        g = rematch.graph(graph)
        solution = rematch.solve(g, self.budget, self.solver, **self.solve_options)
        store_all = rematch.solve(g, sys.float_info.max, "store-all").peak_memory
        self._plan = Plan(graph, solution, self.budget, store_all)
        self._shapes = [(x.shape, x.dtype) for x in branch_inputs]
        return self._plan

    def _scheduled(self, inputs):
        k = len(self._branches)
        if len(inputs) < k:
            raise ValueError("the model takes one input per branch (%d), got %d" % (k, len(inputs)))
        branch_inputs = inputs[:k]
        if not torch.is_grad_enabled():
            return [self._plain_branch(j, x) for j, x in enumerate(branch_inputs)]
        if self._plan is None:
            self.plan(*inputs)
        shapes = [(x.shape, x.dtype) for x in branch_inputs]
        if shapes != self._shapes:
            raise ValueError("inputs %s differ from the planned %s: call plan() with the new inputs" %
                             (shapes, self._shapes))
        anchor = torch.empty(0, requires_grad=True)
        return _Scheduled.apply(_Step(self, branch_inputs), anchor, *branch_inputs)

    def _plain_branch(self, j, x):
        for stage in self._branches[j]:
            x = stage(x)
        return x


class Chain(_ScheduledModel):
    """A chain of stages (an nn.Sequential or a list of modules) trained within `budget` bytes.
    ``model(x)`` returns the last stage's output."""

    def __init__(self, stages, budget, solver="optimal", runs=3, solve_options=None):
        super().__init__([stages], None, budget, solver, runs, solve_options)

    def forward(self, x):
        return self._scheduled([x])[0]


class Join(_ScheduledModel):
    """k branches and a head: ``model(x_0, ..., x_{k-1}, *rest)`` returns
    ``head(branch_0(x_0), ..., branch_{k-1}(x_{k-1}), *rest)`` (the loss)."""

    def __init__(self, branches, head, budget, solver="optimal", runs=3, solve_options=None):
        if len(branches) < 1:
            raise ValueError("a join needs at least one branch")
        super().__init__(branches, head, budget, solver, runs, solve_options)

    def forward(self, *inputs):
        outs = self._scheduled(inputs)
        return self.head(*outs, *inputs[len(self._branches):])
