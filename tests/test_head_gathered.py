"""HeadSparse with traces stored for the selected heads only: the same gradients as the
recursion over every head, and compiled memory that shrinks with the fraction."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
from numerics import f64 as _f64
from numerics import rel as _rel
from numerics import sq as _sq
from user_cells import MultiHead

import snnplast as sp
from snnplast.online import OnlineStep, online_loss_and_grad
from snnplast.online._head_gathered import GatheredHeadStep
from snnplast.online._sequence import run_steps

N_IN, T, B = 4, 6, 2


class MixedHeads(sp.Cell):
    """State ``[heads, d]`` whose recurrence mixes every head into every other."""

    w: jax.Array
    heads: int = eqx.field(static=True)

    def __init__(self, n, key, heads):
        self.w = jax.random.normal(key, (n, n)) * 0.3
        self.heads = heads

    def initial_state(self):
        return jnp.zeros((self.heads, self.w.shape[0] // self.heads))

    def __call__(self, h, x):
        h = jnp.tanh(self.w @ h.reshape(-1) + jnp.sum(x)).reshape(self.heads, -1)
        return h, h.reshape(-1)


def _heads_then_readout(key):
    k1, k2 = jax.random.split(key)
    return sp.Sequential([MultiHead(N_IN, 8, k1, heads=4), sp.LI(8, 3, key=k2)])


CELLS = {
    "linear_attention": lambda key: sp.LinearAttention(N_IN, 8, 4, key=key),
    "user_multi_head": lambda key: MultiHead(N_IN, 8, key, heads=4),
    # The readout's state depends on every head: its traces are whole products, cut to its
    # own selected units afterwards.
    "heads_then_readout": _heads_then_readout,
    "mixed_heads": lambda key: MixedHeads(8, key, 4),
}


def _problem(cell, key):
    k1, k2 = jax.random.split(key)
    xs = jax.random.normal(k1, (B, T, N_IN), jnp.float64)
    _, outs = jax.vmap(lambda x: sp.unroll(cell, x))(xs)
    return xs, jax.random.normal(k2, outs.shape, jnp.float64)


def _both(cell, xs, ys, policy, key):
    """The recursion that stores every head's trace (OnlineStep.step, as before) and the one
    that stores the selected heads', on one runner."""
    runner = OnlineStep(cell, xs[0, 0], policy, _sq)
    p = runner.graph.split(cell)
    every = run_steps(runner, p, runner.init(cell, B, key), xs, ys, key, T)
    gathered = GatheredHeadStep.build(runner)
    assert gathered is not None, GatheredHeadStep.why_not(runner)
    few = gathered.run(p, gathered.init(cell, B, key), xs, ys, key, T).inner
    return [[g / B for g in runner.gradients(p, c)] for c in (every, few)]


def _check(name, fraction, lam, getkey):
    cell = _f64(CELLS[name](getkey()))
    xs, ys = _problem(cell, getkey())
    # Heads are drawn anew every step: one key, the same draws in both runs.
    ref, got = _both(cell, xs, ys, sp.HeadSparse(fraction, lam=lam), getkey())
    assert _rel(ref, jax.tree_util.tree_map(jnp.zeros_like, ref)) > 0
    assert _rel(got, ref) <= 1e-10, _rel(got, ref)


# mixed_heads (heads beside a head-free leaf) by default; the others are slow here. LinearAttention
# also goes through the gathered path in test_policies' test_head_sparse_limits (slow: against
# BPTT at f = 1 and Immediate at f = 0); user_multi_head runs by default below, through the
# public entry point.
@pytest.mark.parametrize("name", [
    "mixed_heads",
    *(pytest.param(n, marks=pytest.mark.slow)
      for n in ("heads_then_readout", "user_multi_head", "linear_attention"))])
def test_gathered_heads_equal_every_head(name, x64, getkey):
    _check(name, 0.25, 1.0, getkey)


# lam < 1 on one fraction: the carried part is scaled, the immediate part is not.
@pytest.mark.slow
@pytest.mark.parametrize("fraction, lam", [(0.5, 0.7), (1.0, 1.0)])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_gathered_heads_equal_every_head_other_fractions(name, fraction, lam, x64, getkey):
    _check(name, fraction, lam, getkey)


def test_gradients_take_the_gathered_path(x64, getkey):
    """sp.gradients runs the gathered recursion by default; an explicit block runs every head's
    records (or, where H is not per unit, the
    step recursion over every head); both give the same numbers."""
    cell = _f64(CELLS["user_multi_head"](getkey()))
    xs, ys = _problem(cell, getkey())
    policy = sp.HeadSparse(0.5)
    key = getkey()
    _, default = online_loss_and_grad(cell, xs, ys, policy, _sq, key=key)
    _, blocks = online_loss_and_grad(cell, xs, ys, policy, _sq, key=key, block=4)
    assert _rel(default, blocks) <= 1e-10


@pytest.mark.slow
def test_gathered_heads_store_a_fraction_of_the_traces(getkey):
    cell = CELLS["linear_attention"](getkey())
    x0 = jnp.zeros(N_IN)
    runners = {f: OnlineStep(cell, x0, sp.HeadSparse(f), _sq) for f in (0.25, 1.0)}
    sizes = {f: GatheredHeadStep.build(r).stored_size() for f, r in runners.items()}
    every = runners[1.0].traces.stored_size()
    assert sizes[1.0] == every
    # Every trace of LinearAttention is per head: 1 of 4 heads stores a quarter.
    assert sizes[0.25] * 4 == every


def _temp_bytes(cell, policy):
    xs = jnp.zeros((B, 8, N_IN))
    _, outs = jax.vmap(lambda x: sp.unroll(cell, x))(xs)
    ys = jnp.zeros(outs.shape)
    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def f(p, xs, ys):
        return sp.gradients(eqx.combine(p, static), xs[0], ys[0], loss=_sq, method=policy)

    return jax.jit(f).lower(params, xs, ys).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("name", [
    "user_multi_head", pytest.param("linear_attention", marks=pytest.mark.slow)])
def test_compiled_memory_shrinks_with_the_fraction(name, getkey):
    cell = CELLS[name](getkey())
    quarter, whole = _temp_bytes(cell, sp.HeadSparse(0.25)), _temp_bytes(cell, sp.HeadSparse(1.0))
    assert quarter < whole, (quarter, whole)


class WithCounter(sp.Cell):
    """Heads beside a scalar state leaf, which has no head axis."""

    w: jax.Array

    def __init__(self, n, key):
        self.w = jax.random.normal(key, (n, n)) * 0.3

    def initial_state(self):
        return (jnp.zeros((4, self.w.shape[0] // 4)), jnp.zeros(()))

    def __call__(self, state, x):
        h, n = state
        h = jnp.tanh(self.w @ h.reshape(-1) + jnp.sum(x)).reshape(4, -1)
        return (h, n + jnp.sum(h)), h.reshape(-1)


def test_what_cannot_be_gathered_falls_back_and_says_why(getkey):
    runner = OnlineStep(WithCounter(8, getkey()), jnp.zeros(N_IN), sp.HeadSparse(0.5), _sq)
    assert "no head axis" in GatheredHeadStep.why_not(runner)
    assert "not HeadSparse" in GatheredHeadStep.why_not(
        OnlineStep(CELLS["mixed_heads"](getkey()), jnp.zeros(N_IN), sp.Diagonal(), _sq))
