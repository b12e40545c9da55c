"""Helpers shared by tests that compare gradients in float64 on the cell zoo's problems."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from cell_zoo import N_IN


def f64(tree):
    """Every floating-point array of `tree` in float64."""
    # Through NumPy: a device cast would compile once per leaf shape.
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(np.asarray(a, np.float64)) if eqx.is_inexact_array(a) else a, tree)


def sq(out, y):
    return jnp.sum((out - y) ** 2)


def problem(cell, key, steps):
    """Inputs ``[steps, N_IN]`` and random targets shaped like the cell's outputs."""
    k1, k2 = jax.random.split(key)
    xs = jax.random.normal(k1, (steps, N_IN), jnp.float64) * 1.5
    _, outs = jax.lax.scan(lambda s, x: cell(s, x), cell.initial_state(), xs)
    return xs, jax.random.normal(k2, outs.shape, jnp.float64)


def rel(a, b):
    """Relative L2 distance of two pytrees of arrays, over all leaves."""
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    # In NumPy float64: an independent reference, and no compilation per leaf shape.
    la, lb = ([np.asarray(x, np.float64) for x in t] for t in (la, lb))
    num = sum(float(np.sum((x - y) ** 2)) for x, y in zip(la, lb))
    return (num / max(sum(float(np.sum(y**2)) for y in lb), 1e-300)) ** 0.5


def loop_reference(cell, xs, ys, loss=sq):
    """The gradient of ``sum_t loss(out_t, ys[t])`` through a Python loop over the steps of one
    sequence ``xs [T, ...]`` from ``cell.initial_state()`` (no lax.scan, no snnplast): the
    reference every method is checked against."""
    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def total(p):
        c = eqx.combine(p, static)
        s, acc = c.initial_state(), 0.0
        for t in range(xs.shape[0]):
            s, o = c(s, xs[t])
            acc = acc + loss(o, ys[t])
        return acc

    return jax.jit(jax.grad(total))(params)
