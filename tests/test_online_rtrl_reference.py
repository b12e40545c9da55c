"""OnlineLearner(Exact()) with an update every step is textbook RTRL, checked step by step.

Experiments 1-3 find exact RTRL adapting worse than k=0 after the shift; this rules out the
simplest cause, a bug in how traces are carried across parameter updates. The reference is a
plain loop in float64 on the flattened model: the sensitivity ``P_t = d s_t / d theta`` is
carried forward with the Jacobians taken at the parameters of step t (the usual online
approximation: ``P`` is never recomputed when the parameters change), the gradient of step t's
loss is ``d l_t/d theta + d l_t/d s_{t-1} P_{t-1}``, and plain SGD applies it at once.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree
from numerics import f64

import snnplast as sp


def _mse(out, y):
    return jnp.mean((out - y) ** 2)


def _reference_rtrl(model, xs, ys, lr):
    """Per-step losses and final parameters of online RTRL + SGD, by an explicit loop."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    theta, unravel_p = ravel_pytree(params)
    s, unravel_s = ravel_pytree(model.initial_state())

    def step(theta, s, x):
        m = eqx.combine(unravel_p(theta), static)
        s_new, out = m(unravel_s(s), x)
        return ravel_pytree(s_new)[0], out

    def loss(theta, s, x, y):
        return _mse(step(theta, s, x)[1], y)

    @jax.jit
    def rtrl_step(theta, s, sens, x, y):
        l_t, (g_theta, g_s) = jax.value_and_grad(loss, argnums=(0, 1))(theta, s, x, y)
        grad = g_theta + g_s @ sens
        j_s = jax.jacfwd(lambda s_: step(theta, s_, x)[0])(s)
        j_theta = jax.jacfwd(lambda t_: step(t_, s, x)[0])(theta)
        return theta - lr * grad, step(theta, s, x)[0], j_s @ sens + j_theta, l_t

    sens = jnp.zeros((s.size, theta.size), theta.dtype)
    losses = []
    for x, y in zip(xs, ys):  # a Python loop: one step at a time, nothing shared with the engine
        theta, s, sens, l_t = rtrl_step(theta, s, sens, x, y)
        losses.append(float(l_t))
    return np.asarray(losses), unravel_p(theta)


@pytest.mark.parametrize("cell", ["rnn", pytest.param("lstm", marks=pytest.mark.slow)])
def test_online_exact_is_rtrl_across_updates(cell, getkey, x64):
    n, steps, lr = 4, 15, 0.2
    k1, k2 = getkey(), getkey()
    core = sp.RNN(1, n, key=k1) if cell == "rnn" else sp.LSTM(1, n, key=k1)
    model = f64(sp.Sequential([core, sp.LI(n, 1, key=k2, kappa=0.0)]))
    t = np.arange(steps + 1)
    wave = np.sin(2 * np.pi * t / 7.0)[:, None]
    xs, ys = jnp.asarray(wave[:-1]), jnp.asarray(wave[1:])

    ref_losses, ref_params = _reference_rtrl(model, xs, ys, lr)
    learner = sp.OnlineLearner(sp.Exact(), _mse, optax.sgd(lr), every=1)
    state = learner.init(model, xs[0])
    new_model, _, losses = learner.update(model, state, xs, ys)

    # The parameters move every step (not a test of a frozen model) ...
    moved = ravel_pytree(ref_params)[0] - ravel_pytree(eqx.filter(model, eqx.is_inexact_array))[0]
    assert float(jnp.linalg.norm(moved)) > 1e-2
    # ... and the learner follows the reference through every update.
    np.testing.assert_allclose(np.asarray(losses), ref_losses, rtol=1e-9, atol=1e-12)
    got = ravel_pytree(eqx.filter(new_model, eqx.is_inexact_array))[0]
    np.testing.assert_allclose(np.asarray(got), np.asarray(ravel_pytree(ref_params)[0]),
                               rtol=1e-9, atol=1e-12)
