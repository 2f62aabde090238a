"""rematch.torch against plain PyTorch: the same model on the same batch gives the same loss and
gradients (parameters and inputs) under every solver, for chains and joins (k = 2, 3, shared and
distinct encoders), dropout included; the executor's byte count never exceeds the budget nor the
plan's predicted peak."""
import time

import pytest
import torch
from torch import nn

import rematch
import rematch.torch as rt

WIDTH, BATCH, DEPTH = 24, 6, 5
ALL_SOLVERS = ["optimal", "branch-sequential", "persistent", "even-split", "store-all", "recompute-all",
               "segments:2", "sqrt"]
FIXED = {"store-all", "recompute-all", "segments:2", "sqrt", "revolve"}


def encoder(seed, dropout=0.0, depth=DEPTH):
    torch.manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers.append(nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.Tanh(), nn.Dropout(dropout)))
    return nn.Sequential(*layers)


def head(*outs):
    # Pairwise distances of the branch outputs: every branch's gradient depends on the others'.
    loss = 0
    for a in range(len(outs)):
        for b in range(a + 1, len(outs)):
            loss = loss + ((outs[a] - outs[b]) ** 2).sum(dim=1).sqrt().mean()
    return loss + outs[0].square().mean()


def grads(module):
    return [p.grad.clone() for p in module.parameters()]


def budget_for(model, inputs, solver):
    """A budget that makes the program-based solvers recompute; the fixed ones get store-all's peak."""
    model.budget, model.solver = 1 << 40, "store-all"
    plan = model.plan(*inputs)
    model.solver = solver
    if solver in FIXED:
        return int(plan.store_all_peak)
    # recompute-all's peak is feasible (and cheap to find, unlike the least budget).
    low = rematch.solve(plan.graph, plan.store_all_peak, "recompute-all").peak_memory
    budget = int(low + 0.35 * (plan.store_all_peak - low))
    try:
        rematch.solve(plan.graph, budget, solver)
    except rematch.InfeasibleBudget as e:  # even-split needs a share of the budget per branch
        budget = int(e.min_memory)
    return budget


def assert_close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


def check_budget(model, plan):
    assert model.last_peak is not None
    assert model.last_peak <= model.budget
    assert model.last_peak <= plan.predicted_peak


@pytest.mark.parametrize("solver", ALL_SOLVERS + ["revolve"])
def test_chain_gradients_equal_plain_pytorch_with_dropout(solver):
    net = encoder(1, dropout=0.2)
    x = torch.randn(BATCH, WIDTH, requires_grad=True)
    target = torch.randn(BATCH, WIDTH)
    model = rt.Chain(net, budget=1, solver=solver, runs=1)
    model.budget = budget_for(model, [x], solver)
    plan = model.plan(x)
    if solver not in FIXED:
        assert plan.solution.makespan > plan.solution.store_all_makespan or plan.predicted_peak < plan.store_all_peak

    torch.manual_seed(7)
    loss = ((model(x) - target) ** 2).mean()
    loss.backward()
    got, got_x = grads(net), x.grad.clone()
    check_budget(model, plan)

    net.zero_grad()
    x.grad = None
    torch.manual_seed(7)
    want_loss = ((net(x) - target) ** 2).mean()
    want_loss.backward()
    torch.testing.assert_close(loss, want_loss)
    assert_close(got, grads(net))
    torch.testing.assert_close(got_x, x.grad)


def first_forward_order(ops):
    order = []
    for op in ops:
        if op["op"].startswith("F_") and (op["branch"], op["stage"]) not in order:
            order.append((op["branch"], op["stage"]))
    return order


def plain_join(branches, inputs, order):
    """Plain autograd, the stages run in `order` (the order that draws the dropout masks)."""
    values = [[x] for x in inputs]
    for j, i in order:
        values[j].append(branches[j][i](values[j][i]))
    return head(*[v[-1] for v in values])


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("solver", ALL_SOLVERS)
def test_join_gradients_equal_plain_pytorch(k, shared, solver):
    dropout = 0.2 if solver in ("optimal", "persistent") else 0.0
    depth = DEPTH if k == 2 else 3  # three branches of three stages keep the exact solvers quick
    branches = [encoder(1, dropout, depth)] * k if shared else [encoder(10 + j, dropout, depth) for j in range(k)]
    inputs = [torch.randn(BATCH, WIDTH) for _ in range(k)]
    model = rt.Join(branches, head, budget=1, solver=solver, runs=1)
    model.budget = budget_for(model, inputs, solver)
    plan = model.plan(*inputs)

    torch.manual_seed(3)
    loss = model(*inputs)
    loss.backward()
    got = grads(model)
    check_budget(model, plan)

    model.zero_grad()
    torch.manual_seed(3)
    want = plain_join(branches, inputs, first_forward_order(plan.solution.ops))
    want.backward()
    torch.testing.assert_close(loss, want)
    assert_close(got, grads(model))
    if shared:
        assert len(list(model.parameters())) == len(list(branches[0].parameters()))


def test_shared_encoder_gradients_sum_over_branches():
    net = encoder(2)
    a, b = torch.randn(BATCH, WIDTH), torch.randn(BATCH, WIDTH)
    model = rt.Join([net, net], head, budget=1, runs=1)
    model.budget = budget_for(model, [a, b], "optimal")
    model.plan(a, b)
    model(a, b).backward()
    got = grads(net)
    net.zero_grad()
    head(net(a), net(b)).backward()  # plain PyTorch: one module used twice
    assert_close(got, grads(net))


def test_dropout_masks_are_reproduced_by_recomputation():
    # recompute-all runs every forward again in the backward: the masks must be the first ones.
    net = encoder(4, dropout=0.5)
    x = torch.randn(BATCH, WIDTH)
    results = []
    for solver in ["store-all", "recompute-all", "optimal"]:
        model = rt.Chain(net, budget=1, solver=solver, runs=1)
        model.budget = budget_for(model, [x], solver)
        model.plan(x)
        net.zero_grad()
        torch.manual_seed(11)
        model(x).sum().backward()
        results.append(grads(net))
    assert_close(results[1], results[0])
    assert_close(results[2], results[0])


def test_executor_refuses_to_exceed_the_budget():
    net = encoder(5)
    x = torch.randn(BATCH, WIDTH)
    model = rt.Chain(net, budget=1, runs=1)
    model.budget = budget_for(model, [x], "optimal")
    plan = model.plan(x)
    model.budget = int(plan.predicted_peak) - 1  # the plan's schedule now needs more than the budget
    with pytest.raises(rt.BudgetExceeded):
        model(x).sum().backward()


def test_plan_reports_an_infeasible_budget():
    net = encoder(6)
    x = torch.randn(BATCH, WIDTH)
    model = rt.Chain(net, budget=100, runs=1)
    with pytest.raises(rematch.InfeasibleBudget) as caught:
        model.plan(x)
    assert caught.value.min_memory > 100


def test_other_inputs_need_a_new_plan_and_no_grad_runs_plainly():
    net = encoder(8)
    x = torch.randn(BATCH, WIDTH)
    model = rt.Chain(net, budget=1 << 30, runs=1)
    model.plan(x)
    with pytest.raises(ValueError, match="plan"):
        model(torch.randn(BATCH + 1, WIDTH))
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x))


def test_plan_profiles_saved_tensors():
    net = encoder(9)
    x = torch.randn(BATCH, WIDTH)
    plan = rt.Chain(net, budget=1 << 30, runs=1).plan(x)
    branch = plan.graph["join"]["branches"][0]
    activation = BATCH * WIDTH * 4
    assert branch["cw"] == [activation] * (DEPTH + 1)
    # Linear keeps its input, Tanh its output (the stage's output itself): one more activation each.
    assert branch["cbw"][1:] == [2 * activation] * DEPTH
    assert all(t > 0 for t in branch["fw"] + branch["bw"])


class Disturbed(nn.Module):
    """A stage whose forward is held up on one call: another process taking the core."""

    def __init__(self, slow_call, seconds):
        super().__init__()
        self.linear, self.calls, self.slow_call, self.seconds = nn.Linear(WIDTH, WIDTH), 0, slow_call, seconds

    def forward(self, x):
        self.calls += 1
        if self.calls == self.slow_call:
            time.sleep(self.seconds)
        return self.linear(x)


def test_plan_profiles_in_passes_and_keeps_each_stages_least_time():
    # A warm-up pass, then `runs` passes; one disturbed run of a stage does not reach its time.
    stages = [Disturbed(slow_call=3, seconds=0.5) for _ in range(3)]
    plan = rt.Chain(stages, budget=1 << 30, runs=3).plan(torch.randn(BATCH, WIDTH))
    assert [s.calls for s in stages] == [4, 4, 4]
    assert all(0 < t < 0.1 for t in plan.graph["join"]["branches"][0]["fw"])  # below a mean of the runs


def test_plan_leaves_gradients_and_random_state_alone():
    net = encoder(12, dropout=0.3)
    x = torch.randn(BATCH, WIDTH)
    net(x).sum().backward()
    before = grads(net)
    state = torch.get_rng_state()
    rt.Chain(net, budget=1 << 30, runs=1).plan(x)
    assert_close(grads(net), before)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("solver", ["store-all", "optimal", "recompute-all"])
def test_chain_count_equals_the_plans_predicted_peak(solver):
    # The executor counts the same bytes the profile measured (outputs plus distinct saved storages,
    # parameters excluded), so on a chain (no head outside the count) its peak is the simulator's.
    net = encoder(13)
    x = torch.randn(BATCH, WIDTH)
    model = rt.Chain(net, budget=1, solver=solver, runs=1)
    model.budget = budget_for(model, [x], solver)
    plan = model.plan(x)
    model(x).sum().backward()
    assert model.last_peak == plan.predicted_peak
