"""The jax / jax.numpy / equinox functions a user's neuron calls, one by one: the engine's
per-step Jacobians against ``jax.jacfwd`` of the step, and the ``Exact`` (and, where the cell is
neuron-local, ``Diagonal``) gradient against ``jax.grad`` of a Python loop, in float64.

The cells are in ``tests/primitive_cells.py``. By default two grouped cells cover the fixes this
file was written for; ``-m slow`` runs every function of the sweep, one cell each.
"""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import f64, loop_reference, rel
from primitive_cells import CASES, FORWARD_ONLY, LOW_PRECISION, N_IN, problem

import snnplast as sp


def sq(out, y):
    return jnp.sum((out - y) ** 2)


def _dense_step_jacobians(cell, state, x):
    """d new float state / d (params, float state) of one step, by JAX's own AD (an integer
    state leaf, such as a PRNG key, is carried along)."""
    params, static = eqx.partition(cell, eqx.is_inexact_array)
    floats, rest = eqx.partition(state, eqx.is_inexact_array)

    def step(p, s):
        new = eqx.combine(p, static)(eqx.combine(s, rest), x)[0]
        return [leaf for leaf in jax.tree_util.tree_leaves(new) if eqx.is_inexact_array(leaf)]

    try:
        return jax.jit(jax.jacfwd(step, argnums=(0, 1)))(params, floats)
    except TypeError:  # a custom_vjp inside the step has reverse mode only
        return jax.jit(jax.jacrev(step, argnums=(0, 1)))(params, floats)


def check_against_jacfwd(ts, cell, state, x):
    """Every H and F block of the derived structure equals JAX's Jacobian of the step."""
    H, F = ts.materialize(cell, state, x)
    leaves = jax.tree_util.tree_leaves(state)
    floats = [a for a, leaf in enumerate(leaves) if eqx.is_inexact_array(leaf)]
    per_leaf = _dense_step_jacobians(cell, state, x)
    for (dp, ds), a in zip(per_leaf, floats):
        for b, block in zip(floats, jax.tree_util.tree_leaves(ds)):
            np.testing.assert_allclose(H[(a, b)], block, rtol=1e-12, atol=1e-12)
        for k, block in enumerate(jax.tree_util.tree_leaves(dp)):
            np.testing.assert_allclose(F[(a, k)], block, rtol=1e-12, atol=1e-12)


def _grad(cell, xs, ys, method, **kw):
    g = sp.gradients(cell, xs, ys, method=method, loss=sq, key=jax.random.PRNGKey(3), **kw)
    return eqx.filter(g, eqx.is_inexact_array)


def _input_and_state(cell, seed=0):
    """One input and a random state for a Jacobian check, drawn in NumPy: the default tests pay
    for no jax.random compilation and no step-by-step warm-up."""
    rng = np.random.default_rng(seed)
    x = (jnp.asarray(rng.integers(0, cell.int_inputs)) if cell.int_inputs
         else jnp.asarray(rng.normal(size=N_IN)))
    state = jax.tree_util.tree_map(
        lambda a: jnp.asarray(rng.normal(size=a.shape) * 0.5) if eqx.is_inexact_array(a) else a,
        cell.initial_state())
    return x, state


def _state_after(cell, xs, steps):
    s = cell.initial_state()
    for t in range(steps):
        s, _ = cell(s, xs[t])
    return s


# ----- default: two cells, several fixes each ----------------------------------------------------
def test_compartment_rules_keep_structure_and_agree_with_jacfwd(x64):
    """cumprod, cummax, sort, argsort, prod along a [n, 2] state's compartments, jax.vmap of
    u[k] and u.at[k].set (gathers and scatters with batch dims), a triangular solve against a
    learnable 2x2 coupling: each neuron keeps its own 2x2 block (block-diagonal H; before, each
    was a dense fallback, most with a warning), and every block equals jacfwd's."""
    cell = f64(CASES["compartment_rules"][0](jax.random.PRNGKey(0)))
    x, state = _input_and_state(cell)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a dense fallback warns
        ts = sp.derive(cell, x)
    assert ts.h_class(0, 0) == "block-diagonal"
    check_against_jacfwd(ts, cell, state, x)


def test_steps_that_crashed_derive_and_agree(x64):
    """Three steps that crashed derive: an int64 token through eqx.nn.Embedding (the
    dynamic_slice rule compared it with int32 positions), jnp.linalg.solve (JAX's JVP of
    custom_linear_solve refuses the symbolic zeros the dense fallback passed), bfloat16 math in a
    float64 step (mixed dtypes in the products). Jacobians equal jacfwd's (the gradients: the
    slow matrix below, to bfloat16's resolution since JAX's reverse mode rounds there)."""
    cell = f64(CASES["crashed_before"][0](jax.random.PRNGKey(0)))
    x, state = _input_and_state(cell)
    assert x.dtype == jnp.int64
    with pytest.warns(UserWarning, match="custom_linear_solve"):  # dense, and says so
        ts = sp.derive(cell, x)
    check_against_jacfwd(ts, cell, state, x)


@pytest.mark.slow
@pytest.mark.parametrize("name", [
    "axis_ops",  # cumprod, cummax, cumlogsumexp, sort, argsort, prod along the compartments
    "vmapped_indexing",  # jax.vmap of u[k] and u.at[k].set, take_along_axis: batched gathers
    "cholesky/triangular_solve(2x2)",  # a learnable 2x2 coupling of each neuron's compartments
])
def test_structure_kept_and_jacobians_agree_with_jacfwd(name, x64):
    """Each neuron's 2x2 block only (block-diagonal H, no dense fallback), equal to jacfwd."""
    cell = f64(CASES[name][0](jax.random.PRNGKey(0)))
    xs, _ = problem(cell, jax.random.PRNGKey(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ts = sp.derive(cell, xs[0])
    assert ts.h_class(0, 0) == "block-diagonal"
    check_against_jacfwd(ts, cell, _state_after(cell, xs, 2), xs[2])


# ----- slow: every function of the sweep ------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_function_jacobians_and_gradients(name, x64):
    build, local = CASES[name]
    cell = f64(build(jax.random.PRNGKey(0)))
    xs, ys = problem(cell, jax.random.PRNGKey(1))
    ts = sp.derive(cell, xs[0])
    check_against_jacfwd(ts, cell, _state_after(cell, xs, 2), xs[2])
    if name in FORWARD_ONLY:  # the online learning signal is a one-step VJP: refused in one line
        with pytest.raises(sp.ValidationError, match="runs a lax.while_loop at .*primitive_cells"):
            _grad(cell, xs, ys, sp.Exact())
        return
    ref = loop_reference(cell, xs, ys, sq)
    tol = 4 * LOW_PRECISION.get(name, 2.5e-11)
    assert rel(_grad(cell, xs, ys, sp.Exact()), ref) <= tol
    if local:
        for block in (1, None):
            assert rel(_grad(cell, xs, ys, sp.Diagonal(), block=block), ref) <= tol
