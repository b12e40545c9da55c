"""Products of structured Jacobians in their cheapest order, against right to left."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cell_zoo import BUILTIN, N_IN
from numerics import f64 as _f64

import snnplast as sp
from snnplast.engine import SJac, chain, compose, dense, diagonal, materialize, plan_chain
from snnplast.engine._chain import right_to_left_cost


def _right_to_left(factors):
    acc = factors[-1]
    for f in reversed(factors[:-1]):
        acc = compose(f, acc)
    return acc


def _random_k_chain(key, n=6, k=2, m=5, tied=False):
    """RandomK's carried path ``(H - D)[:, idx] @ S @ K`` applied to a trace: an ``n x k``
    block, a ``k x n`` one-hot selection, a per-unit diagonal, and a trace ``G`` that is dense
    over ``n x (n, m)`` (a recurrent weight's) or tied to its rows (a readout weight's)."""
    k1, k2, k3 = jax.random.split(key, 3)
    idx = jnp.array([4, 1])[:k]
    onehot = jax.nn.one_hot(idx, n, dtype=jnp.float64)
    back = dense((n,), (k,), jax.random.normal(k1, (n, k), jnp.float64), const=False)
    select = dense((k,), (n,), onehot, const=False)
    d = diagonal((n,), jax.random.normal(k2, (n,), jnp.float64), const=False)
    if tied:
        g = SJac((n,), (n, m), frozenset({(0, 0)}), jax.random.normal(k3, (m,), jnp.float64),
                 ((None, 1),))
    else:
        g = dense((n,), (n, m), jax.random.normal(k3, (n, n, m), jnp.float64), const=False)
    return [back, select, d, g]


@pytest.mark.parametrize("tied", [False, True])
def test_chain_equals_right_to_left(tied, x64, getkey):
    factors = _random_k_chain(getkey(), tied=tied)
    ref = materialize(_right_to_left(factors))
    got = chain(factors)
    np.testing.assert_allclose(np.asarray(materialize(got)), np.asarray(ref), rtol=1e-12,
                               atol=1e-12)
    plan = plan_chain(factors)
    assert plan.cost <= right_to_left_cost(factors)
    if not tied:
        # The dense trace meets the k x n selection first: k rows of G, not n.
        assert plan.cost < right_to_left_cost(factors)
        assert plan.split[(0, 4)] == 1 and plan.split[(1, 4)] == 3


def test_plan_chain_rejects_an_empty_chain():
    with pytest.raises(ValueError, match="empty chain"):
        plan_chain([])


def _right_to_left_update(traces, G, Ht, F):
    """The trace update as it was before chains were planned: ``F + lam * sum(products
    applied to the trace right to left)``, one term per product."""
    lam = traces.policy.lam
    new = {}
    for a, p in traces.pairs:
        terms = [materialize(F[(a, p)])] if (a, p) in F else []
        for (a2, b), products in Ht.items():
            if a2 == a and (b, p) in G:
                terms += [lam * materialize(_right_to_left(list(pr) + [G[(b, p)]]))
                          for pr in products]
        if terms:
            new[(a, p)] = sum(terms)
    return new


# Slow: building the step and running it eagerly takes 5-20 s here; the default suite checks the
# planned update end to end (Exact and RandomK against BPTT and dense references, test_policies).
@pytest.mark.slow
@pytest.mark.parametrize("name,method", [("ralif", sp.RandomK(2)), ("ralif", sp.Exact()),
                                         ("rnn", sp.RandomK(1, lam=0.5))])
def test_trace_update_equals_right_to_left(name, method, x64, getkey):
    """One step of the planned update (cheapest order, shared first factors summed first)
    equals the product applied right to left, on random traces and a random state."""
    from snnplast.online import OnlineStep

    cell = _f64(BUILTIN[name](getkey()))
    x = jax.random.normal(getkey(), (N_IN,), jnp.float64)
    runner = OnlineStep(cell, x, method, lambda out, y: jnp.sum(out))
    traces = runner.traces
    state = [jax.random.normal(getkey(), jnp.shape(s), jnp.float64) * 2.0
             for s in jax.tree_util.tree_leaves(cell.initial_state())]
    p_leaves = runner.graph.split(cell)
    _, H, F, _ = traces.blocks(p_leaves, state, [x])
    k_prev = {key: SJac(o, i, ties, jax.random.normal(getkey(), shape, jnp.float64), keys)
              for key, (o, i, ties, keys, shape) in runner.k_struct.items()}
    ctx = runner.context.with_state(method.init_state(runner.context, getkey()))
    Ht = traces.carried(H, k_prev, ctx)
    G = {key: SJac(g.out_shape, g.in_shape, g.ties,
                   jax.random.normal(getkey(), g.val.shape, jnp.float64), g.val_keys)
         for key, g in traces.zeros(jnp.float64).items()}
    got = traces.update(G, Ht, F)
    ref = _right_to_left_update(traces, G, Ht, F)
    assert set(ref) <= set(got) and ref
    for key, val in ref.items():
        np.testing.assert_allclose(np.asarray(materialize(got[key])), np.asarray(val),
                                   rtol=1e-11, atol=1e-11)
