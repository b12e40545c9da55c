"""The step recursion's contractions a chunk of steps at a time (one product over time and
batch): the numbers of a product at every step, float64; which traces are deferred; where the
products sit in the compiled loops."""

import jax
import jax.numpy as jnp
import pytest
from cell_zoo import ALL, BUILTIN, N_IN
from numerics import f64, problem, rel, sq

import snnplast as sp
from snnplast.online import OnlineStep, deferred_pairs, online_loss_and_grad
from snnplast.online._sequence import run_steps

B, T = 2, 10  # chunks of 3 leave a remainder of 1


def _runner(cell, policy):
    return OnlineStep(cell, jnp.zeros(N_IN), policy, sq)


def _grads(runner, cell, xs, ys, every):
    p = runner.graph.split(cell)
    key = jax.random.PRNGKey(0)
    carry = run_steps(runner, p, runner.init(cell, B, key), xs, ys, key, T,
                      contract_every=every)
    return carry.loss, runner.gradients(p, carry)


def _check(name, policy, key):
    cell = f64(ALL[name](key))
    xs, ys = jax.vmap(lambda k: problem(cell, k, T))(jax.random.split(jax.random.fold_in(key, 1),
                                                                      B))
    try:
        runner = OnlineStep(cell, xs[0, 0], policy, sq)
    except sp.ValidationError as error:
        pytest.skip(f"{policy.name} refuses {name}: {error}")
    if not deferred_pairs(runner):
        pytest.skip(f"no trace of {name} under {policy.name} is small enough to defer")
    loss1, ref = _grads(runner, cell, xs, ys, 1)
    assert rel(ref, jax.tree_util.tree_map(jnp.zeros_like, ref)) > 0  # something to compare
    for every in (3,):  # a chunk longer than T: the reference test below (block=1, T < 32)
        loss, got = _grads(runner, cell, xs, ys, every)
        assert rel(got, ref) <= 1e-10, (every, rel(got, ref))
        assert abs(float(loss - loss1)) <= 1e-12 * abs(float(loss1))


SLOW = [(n, p) for n in sorted(ALL) for p in (sp.Diagonal(), sp.Diagonal(lam=0.7),
                                              sp.Immediate(), sp.Exact())]
FAST = [("ralif", sp.Diagonal(lam=0.7))]


@pytest.mark.parametrize(("name", "policy"), FAST + [
    pytest.param(n, p, marks=pytest.mark.slow) for n, p in SLOW
    if not any(n == f and p == q for f, q in FAST)],
    ids=lambda v: v if isinstance(v, str) else f"{v.name}-{v.lam}")
def test_chunked_contractions_equal_a_product_per_step(name, policy, x64, getkey):
    """Chunks of 3 (a remainder of 1) == a product at every step."""
    _check(name, policy, getkey())


def test_deferred_equals_bptt_without_recurrence(x64, getkey):
    """An independent reference: without recurrence e-prop is exact; the default step
    recursion (block=1: chunks of the whole short sequence) and chunks of 3 give BPTT's
    gradient."""
    cell = f64(BUILTIN["alif"](getkey()))
    xs, ys = jax.vmap(lambda k: problem(cell, k, T))(jax.random.split(getkey(), B))
    ref = jax.vmap(lambda x, y: sp.gradients(cell, x, y, loss=sq))(xs, ys)
    ref = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), ref)
    _, got = online_loss_and_grad(cell, xs, ys, sp.Diagonal(), sq, block=1)
    assert rel(got, ref) <= 1e-10
    runner = OnlineStep(cell, xs[0, 0], sp.Diagonal(), sq)
    _, chunked = _grads(runner, cell, xs, ys, 3)
    assert rel([g / B for g in chunked], jax.tree_util.tree_leaves(ref)) <= 1e-10


def test_which_traces_are_deferred(getkey):
    """Factorised and per-unit traces are deferred; per-synapse and dense ones are not."""
    rlif = _runner(BUILTIN["rlif"](getkey()), sp.Diagonal())
    assert deferred_pairs(rlif) == frozenset(rlif.traces.structure)  # x-bar, z-bar
    ralif = _runner(BUILTIN["ralif"](getkey()), sp.Diagonal())
    names = {(ralif.state_names[a], q) for a, q in deferred_pairs(ralif)}
    # The potential's traces factorise; the adaptation's are one number per synapse.
    assert {n for n, _ in names} == {"v"}
    assert len(names) == 2


@pytest.mark.slow
def test_dense_traces_are_not_deferred(getkey):
    assert deferred_pairs(_runner(BUILTIN["rlif"](getkey()), sp.Exact())) == frozenset()
    assert deferred_pairs(_runner(BUILTIN["rlif"](getkey()), sp.RandomK(2))) == frozenset()


def _dots(jaxpr, shape, loops=()) -> list:
    """The lengths of the scans around each dot_general with output `shape` in `jaxpr`."""
    out = []
    for e in jaxpr.eqns:
        if e.primitive.name == "dot_general" and e.outvars[0].aval.shape == shape:
            out.append(loops)
        inside = loops + ((e.params["length"],) if e.primitive.name == "scan" else ())
        for v in e.params.values():
            for sub in v if isinstance(v, (tuple, list)) else [v]:
                inner = getattr(sub, "jaxpr", None)
                if inner is not None:
                    out += _dots(getattr(inner, "jaxpr", inner), shape, inside)
    return out


def test_one_product_per_chunk(x64, getkey):
    """W_in's contraction runs once per chunk (in the loop over chunks), not once per step;
    the steps left over by whole chunks (run first) each have their own."""
    cell = f64(BUILTIN["rlif"](getkey()))
    xs, ys = jax.vmap(lambda k: problem(cell, k, 8))(jax.random.split(getkey(), B))
    runner = OnlineStep(cell, xs[0, 0], sp.Diagonal(), sq)
    p = runner.graph.split(cell)

    def loops(every):
        def run(p):
            key = jax.random.PRNGKey(0)
            c = run_steps(runner, p, runner.init(cell, B, key), xs, ys, key, 8,
                          contract_every=every)
            return c.grad_phi
        return sorted(_dots(jax.make_jaxpr(run)(p).jaxpr, cell.w_in.shape))

    assert loops(1) == [(8,)]  # a product at each of the 8 steps
    assert loops(3) == [(2,), (2,)]  # at each of the 2 steps left over, then 2 chunks of 3
