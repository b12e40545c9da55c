"""The input-only part of a step (an input projection ``W_in x_t``) evaluated a chunk or a block
of steps at once, before the steps: the numbers of evaluating it inside every step (float64),
which part is taken out, and where its product sits in the compiled loops."""

import jax
import jax.numpy as jnp
import pytest
from cell_zoo import ALL, BUILTIN, N_IN
from numerics import f64, problem, rel, sq

import snnplast as sp
from snnplast.engine import step_graph
from snnplast.online import OnlineStep, _blocked, accumulation_mode, online_loss_and_grad

B, T = 2, 10  # chunks and blocks of 3 leave a remainder of 1


def _batch(cell, key, steps=T):
    return jax.vmap(lambda k: problem(cell, k, steps))(jax.random.split(key, B))


def _check(name, policy, mode, key, monkeypatch, steps=T):
    # Blocks of 3 evaluate the input-only values 2 steps at a time: a new chunk inside each
    # block, and the last block's second one moved back to where the inputs end.
    monkeypatch.setattr(_blocked, "HOIST_EVERY", 2)
    cell = f64(ALL[name](key))
    xs, ys = _batch(cell, jax.random.fold_in(key, 1), steps)
    try:
        runner = OnlineStep(cell, xs[0, 0], policy, sq)
    except sp.ValidationError as error:
        pytest.skip(f"{policy.name} refuses {name}: {error}")
    if runner.hoist_plan() is None:
        pytest.skip(f"{name}'s step has no input-only contraction under {policy.name}")
    if mode == "blocks" and accumulation_mode(runner)[0] != "blocked":
        pytest.skip(f"{policy.name} runs {name} step by step")
    kw = {"block": 3} if mode == "blocks" else {"block": 1, "contract_every": 3}
    l0, ref = online_loss_and_grad(cell, xs, ys, policy, sq, hoist=False, **kw)
    assert rel(ref, jax.tree_util.tree_map(jnp.zeros_like, ref)) > 0  # something to compare
    l1, got = online_loss_and_grad(cell, xs, ys, policy, sq, hoist=True, **kw)
    assert rel(got, ref) <= 1e-10, rel(got, ref)
    assert abs(float(l1 - l0)) <= 1e-12 * abs(float(l0))


POLICIES = (sp.Diagonal(), sp.Diagonal(lam=0.7), sp.Immediate(), sp.Exact())
# Hoisting is off by default (it saved no time on a CPU), so its numbers are checked in the
# slow run only (the default run keeps test_what_is_hoisted): every cell and policy in chunks
# and blocks, e.g. gru (the projection, its sum with a bias and its split are taken out) and
# rlif under Exact (dense traces, no deferred contraction: the chunks are for the projection
# only).
FAST = []
SLOW = [(n, p, m) for n in sorted(ALL) for p in POLICIES for m in ("steps", "blocks")]


@pytest.mark.parametrize(("name", "policy", "mode"), FAST + [
    pytest.param(n, p, m, marks=pytest.mark.slow) for n, p, m in SLOW
    if not any(n == f and p == q and m == r for f, q, r in FAST)],
    ids=lambda v: v if isinstance(v, str) else f"{v.name}-{v.lam}")
def test_hoisted_equals_in_every_step(name, policy, mode, x64, getkey, monkeypatch):
    """Chunks (step recursion) or blocks of 3 with a remainder: hoisted == not hoisted. The
    default case takes 6 steps (two blocks; fewer compilations than 10)."""
    fast = any(name == f and policy == q and mode == r for f, q, r in FAST)
    _check(name, policy, mode, getkey(), monkeypatch, 6 if fast else T)


@pytest.mark.slow
def test_hoisted_exact_equals_bptt(x64, getkey):
    """An independent reference: Exact is BPTT's gradient; with the projection hoisted in
    chunks of 3 (a remainder of 1) it still is."""
    cell = f64(BUILTIN["gru"](getkey()))
    xs, ys = _batch(cell, getkey())
    ref = jax.vmap(lambda x, y: sp.gradients(cell, x, y, loss=sq))(xs, ys)
    ref = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), ref)
    _, got = online_loss_and_grad(cell, xs, ys, sp.Exact(), sq, block=1, contract_every=3)
    assert rel(got, ref) <= 1e-10


def _skipped(graph, plan):
    return [e.primitive.name if e.primitive is not None else e.kind
            for e in graph.flat.eqns if id(e) in plan.skip]


def test_what_is_hoisted(getkey):
    """A recurrent LIF layer: ``W_in x`` only (one product, one value read per step). Nothing
    when the step still differentiates the projection's weight (a policy that masks traces
    has no direct cut, so its learning signal differentiates every traced parameter), and
    nothing for a cell whose step has no input-only contraction."""
    graph = step_graph(BUILTIN["rlif"](getkey()), jnp.zeros(N_IN))
    w_in = [q for q, src in enumerate(graph.phi_sources) if src == [0]]
    for fixed in (None, set(w_in)):
        plan = graph.hoist_plan(fixed)
        assert _skipped(graph, plan) == ["dot_general"]
        nodes = {o.id: o for e in graph.flat.eqns for o in e.outputs}
        assert [nodes[i].shape for i in plan.needed] == [(4,)]
    assert graph.hoist_plan(set()) is None
    # Columnar concatenates the input with the state before its product.
    assert step_graph(ALL["columnar"](getkey()), jnp.zeros(N_IN)).hoist_plan(None) is None


def _dots(jaxpr, loops=()) -> list:
    """``(lengths of the scans around it, operand shapes)`` for each dot_general."""
    out = []
    for e in jaxpr.eqns:
        if e.primitive.name == "dot_general":
            out.append((loops, tuple(tuple(v.aval.shape) for v in e.invars)))
        inside = loops + ((e.params["length"],) if e.primitive.name == "scan" else ())
        for v in e.params.values():
            for sub in v if isinstance(v, (tuple, list)) else [v]:
                inner = getattr(sub, "jaxpr", None)
                if inner is not None:
                    out += _dots(getattr(inner, "jaxpr", inner), inside)
    return out


@pytest.mark.slow
def test_projection_leaves_the_step_loop(x64, getkey):
    """Hoisted, ``W_in x`` is one product over a chunk's ``K B`` inputs in the loop over chunks;
    not hoisted, a product of ``B`` inputs in the loop over steps."""
    cell = f64(BUILTIN["rlif"](getkey()))
    xs, ys = _batch(cell, getkey(), 8)

    def weight_times_inputs(hoist):
        jaxpr = jax.make_jaxpr(lambda x: online_loss_and_grad(
            cell, x, ys, sp.Diagonal(), sq, block=1, contract_every=4, hoist=hoist))(xs)
        # W_in [4, N_IN] against a batch of inputs [rows, N_IN].
        return {(loops, shapes[1][0]) for loops, shapes in _dots(jaxpr.jaxpr)
                if shapes[0] == (4, N_IN) and shapes[1][-1:] == (N_IN,)}

    assert weight_times_inputs(True) == {((2,), 4 * B)}
    assert weight_times_inputs(False) == {((2, 4), B)}
