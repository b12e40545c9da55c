"""``lax.cond`` and ``lax.switch`` inside a step: every branch is flattened inline and the
outputs chosen by ``select_n`` on the index, so diagonal branches give a diagonal ``H`` (before:
a dense fallback). ``Exact`` (and ``Diagonal`` where nothing couples neurons) equals ``jax.grad``
of a Python loop in float64; an untaken branch that computes inf or NaN changes nothing (JAX
differentiates the taken branch only; the engine must not multiply the untaken one by zero).
"""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from numerics import loop_reference, rel

import snnplast as sp

N_IN, H, T = 3, 4, 6


def sq(out, y):
    return jnp.sum((out - y) ** 2)


class InputCond(sp.Cell):
    """A leaky unit whose update is chosen by the input's total drive (both branches local)."""

    w: jax.Array

    def initial_state(self):
        return jnp.zeros(self.w.shape[0])

    def __call__(self, v, x):
        i = self.w @ x
        v = lax.cond(jnp.sum(i) > 0, lambda: 0.9 * v + jnp.tanh(i), lambda: 0.5 * v + 0.1 * i)
        return v, v


class StateCond(sp.Cell):
    """A reset chosen by the mean potential (a state-dependent scalar predicate)."""

    w: jax.Array
    tau: jax.Array

    def initial_state(self):
        return jnp.full(self.w.shape[0], 0.3)

    def __call__(self, v, x):
        i = self.w @ x
        v = lax.cond(jnp.mean(v) > 0.4, lambda u: 0.2 * u * self.tau + i,
                     lambda u: self.tau * u + jnp.sin(u) * 0.1 + i, v)
        return v, v


class Switch3(sp.Cell):
    """Three update rules chosen by an integer index: the input's largest entry."""

    w: jax.Array

    def initial_state(self):
        return jnp.full(self.w.shape[0], 0.1)

    def __call__(self, v, x):
        i = self.w @ x
        k = jnp.argmax(x)
        v = lax.switch(k, [lambda u: 0.9 * u + i, lambda u: jnp.tanh(u) + 0.5 * i,
                           lambda u: u * jnp.exp(-0.1 * i)], v)
        return v, v


class NestedCond(sp.Cell):
    """A cond inside one branch of another."""

    w: jax.Array

    def initial_state(self):
        return jnp.full(self.w.shape[0], 0.2)

    def __call__(self, v, x):
        i = self.w @ x

        def inner(u):
            return lax.cond(jnp.max(u) > 0.5, lambda: 0.7 * u + i, lambda: 0.95 * u - 0.1 * i)

        v = lax.cond(x[0] > 0, inner, lambda u: 0.8 * u + jnp.tanh(i), v)
        return v, v


class TupleCond(sp.Cell):
    """An adaptive unit whose branches return a tuple, with different operations per branch
    (one mixes neurons through a recurrent matmul, the other leaves the adaptation alone)."""

    w: jax.Array
    r: jax.Array

    def initial_state(self):
        return (jnp.zeros(self.w.shape[0]), jnp.full(self.w.shape[0], 0.1))

    def __call__(self, s, x):
        v, a = s
        i = self.w @ x

        def active(v, a):
            return 0.9 * v + i - a + 0.1 * (self.r @ jnp.tanh(v)), 0.8 * a + 0.1 * v

        def quiet(v, a):
            return 0.5 * v + 0.2 * i, a

        v, a = lax.cond(jnp.sum(i) > 0, active, quiet, v, a)
        return (v, a), v


class UnsafeBranch(sp.Cell):
    """The branch taken while every ``u`` is positive computes ``sqrt(u)`` and ``0.1 / u``;
    untaken, its values and derivatives are NaN or inf (a negative ``u``, a zero)."""

    w: jax.Array

    def initial_state(self):
        return jnp.zeros(self.w.shape[0])

    def __call__(self, v, x):
        u = v + self.w @ x
        v = lax.cond(jnp.all(u > 0), lambda: 0.5 * v + jnp.sqrt(u) + 0.1 / jnp.maximum(u, 0.0),
                     lambda: 0.9 * v + 0.3 * u)
        return v, v


class Counted(sp.Cell):
    """A refractory counter (int32) and a PRNG key as cond operands: they pass through the
    branches (one counts down, the other resets and splits the key) with no derivative."""

    w: jax.Array

    def initial_state(self):
        return (jnp.zeros(self.w.shape[0]), jnp.zeros((), jnp.int32), jax.random.key(0))

    def __call__(self, s, x):
        v, n, key = s
        i = self.w @ x

        def refractory(v, n, key):
            return 0.5 * v, n - 1, key

        def integrate(v, n, key):
            fired = jnp.sum(v) > 1.0
            key, sub = jax.random.split(key)
            noise = 0.01 * jax.random.normal(sub, v.shape, v.dtype)
            return 0.9 * v + i + noise, jnp.where(fired, 2, 0).astype(jnp.int32), key

        v, n, key = lax.cond(n > 0, refractory, integrate, v, n, key)
        return (v, n, key), v


def _build(cls, key, dtype=jnp.float64):
    k = jax.random.split(key, 3)
    w = jax.random.normal(k[0], (H, N_IN), dtype) * 0.8
    if cls is StateCond:
        return cls(w, jax.random.uniform(k[1], (H,), dtype, 0.5, 0.95))
    if cls is TupleCond:
        return cls(w, jax.random.normal(k[1], (H, H), dtype) * 0.3)
    return cls(w)


def _problem(seed=1):
    """Inputs of both signs (each branch is taken at some step) and random targets."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(T, N_IN)) * 1.5
    xs[::2] = np.abs(xs[::2])
    return jnp.asarray(xs), jnp.asarray(rng.normal(size=(T, H)))


def _grad(cell, xs, ys, method):
    return eqx.filter(sp.gradients(cell, xs, ys, method=method, loss=sq), eqx.is_inexact_array)


# (cell, its blocks that the branches keep diagonal, whether Diagonal is exact on it)
CELLS = {
    "input_cond": (InputCond, [(0, 0)], True),
    "state_cond": (StateCond, [(0, 0)], True),
    "switch3": (Switch3, [(0, 0)], True),
    "nested_cond": (NestedCond, [(0, 0)], True),
    "tuple_cond": (TupleCond, [(1, 1)], False),  # v <- v mixes neurons in one branch
    "int_and_key_operands": (Counted, [(0, 0)], True),
}


# Each case compiles two gradients (about 2 s): the plain cond of an input (also
# tests/user_cells_more.py's CondStep), the state's predicate and the tuple branches run in the
# slow set; the default set keeps the switch, the nested cond and the integer/key operands.
SLOW = {"input_cond", "state_cond", "tuple_cond"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in sorted(CELLS)])
def test_cond_keeps_structure_and_exact_equals_bptt(name, x64):
    """The inputs take every branch (and the nested cond's inner branches) at some step:
    checked by hand when written."""
    cls, diagonal_blocks, local = CELLS[name]
    cell = _build(cls, jax.random.PRNGKey(0))
    xs, ys = _problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a dense fallback warns
        ts = sp.derive(cell, xs[0])
    for a, b in diagonal_blocks:
        assert ts.h_class(a, b) == "diagonal", (a, b, ts)
    ref = loop_reference(cell, xs, ys, sq)
    assert rel(_grad(cell, xs, ys, sp.Exact()), ref) <= 1e-10
    if local:
        assert rel(_grad(cell, xs, ys, sp.Diagonal()), ref) <= 1e-10


def test_untaken_branch_with_nan_changes_nothing(x64):
    """Steps 2 and 3 drive some ``u`` negative: the sqrt/reciprocal branch is untaken there and
    its values and derivatives are NaN/inf. The gradients stay finite and equal BPTT's (before
    the guards: NaN from the Jacobians' ``0 * inf`` and from the learning signal's VJP)."""
    cell = _build(UnsafeBranch, jax.random.PRNGKey(0))
    cell = eqx.tree_at(lambda c: c.w, cell, jnp.abs(cell.w))
    xs, ys = _problem()
    xs = jnp.abs(xs).at[2:4].multiply(-3.0)
    s, untaken = cell.initial_state(), 0
    for t in range(T):
        untaken += int(not jnp.all(s + cell.w @ xs[t] > 0))
        s, _ = cell(s, xs[t])
    assert untaken >= 1
    ts = sp.derive(cell, xs[0])
    assert ts.h_class(0, 0) == "diagonal"
    ref = loop_reference(cell, xs, ys, sq)
    assert np.all(np.isfinite(ref.w))
    for method in (sp.Exact(), sp.Diagonal()):
        assert rel(_grad(cell, xs, ys, method), ref) <= 1e-10


def test_branch_with_an_effect_stays_whole_and_correct(x64):
    """A branch with ``jax.debug.print`` is not flattened (every branch would print at every
    step): the cond is differentiated densely, with a warning that says why, and stays exact."""

    class Printing(InputCond):
        def __call__(self, v, x):
            def loud(v):
                jax.debug.print("{}", jnp.sum(v))
                return 0.9 * v + self.w @ x

            v = lax.cond(x[0] > 0, loud, lambda v: 0.5 * v, v)
            return v, v

    cell = _build(InputCond, jax.random.PRNGKey(0))
    cell = Printing(cell.w)
    xs, ys = _problem()
    with pytest.warns(UserWarning, match="primitive 'cond' .* a branch has an effect"):
        ts = sp.derive(cell, xs[0])
    assert ts.h_class(0, 0) == "dense"
    ref = loop_reference(cell, xs, ys, sq)
    assert rel(_grad(cell, xs, ys, sp.Exact()), ref) <= 1e-10
