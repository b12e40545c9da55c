"""RandomK's default (scale=False), chosen by measurement (benchmarks/exp_random_k_default.py)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from cell_zoo import BUILTIN, N_IN

import snnplast as sp


def _sq(out, y):
    return jnp.sum((out - y) ** 2)


def _elman_sine(n, steps, key):
    k1, k2 = jax.random.split(key)
    model = sp.Sequential([sp.RNN(1, n, key=k1), sp.LI(n, 1, key=k2, kappa=0.0)])
    x = jnp.sin(2 * jnp.pi / 25 * jnp.arange(steps + 1, dtype=jnp.float32))[:, None]
    return model, x[:-1], x[1:]


def test_random_k_default_is_unscaled_and_k_equal_n_is_exact(x64, getkey):
    assert sp.RandomK(4).scale is False
    cell = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a)
                                  else a, BUILTIN["rnn"](getkey()))
    xs = jax.random.normal(getkey(), (8, N_IN), jnp.float64)
    ys = jax.random.normal(getkey(), (8, 4), jnp.float64)
    exact = sp.gradients(cell, xs, ys, loss=_sq, method=sp.Exact())
    full = sp.gradients(cell, xs, ys, loss=_sq, method=sp.RandomK(4), key=getkey())
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(exact)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_random_k_default_learns_online_without_diverging():
    """The issue's reproduction, shortened: Elman RNN + readout, sine one step ahead, Adam 3e-3."""
    model, xs, ys = _elman_sine(16, 600, jax.random.PRNGKey(0))
    learner = sp.OnlineLearner(sp.RandomK(4), lambda o, y: jnp.mean((o - y) ** 2),
                               optax.adam(3e-3))
    state = learner.init(model, xs[0], key=jax.random.PRNGKey(1))
    _, _, losses = learner.update(model, state, xs, ys, key=jax.random.PRNGKey(2))
    losses = np.asarray(losses)
    assert np.all(np.isfinite(losses))
    assert losses[-100:].mean() < 0.2 * losses[:100].mean()


@pytest.mark.slow
def test_scaled_random_k_gradient_explodes_where_the_default_does_not():
    """Why the default changed: the n/k-scaled trace's gradient grows geometrically in norm."""
    from snnplast import diagnostics

    model, xs, ys = _elman_sine(32, 200, jax.random.PRNGKey(0))
    mse = lambda o, y: jnp.mean((o - y) ** 2)
    scaled = diagnostics.gradient_alignment(model, xs, ys, sp.RandomK(4, scale=True), mse)
    default = diagnostics.gradient_alignment(model, xs, ys, sp.RandomK(4), mse)
    assert np.nanmedian(default.norm_ratio[100:]) < 2.0
    assert np.nanmedian(scaled.norm_ratio[100:]) > 1e3
    assert np.nanmean(default.cosine[100:]) > np.nanmean(scaled.cosine[100:]) + 0.5
