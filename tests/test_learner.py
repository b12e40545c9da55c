"""OnlineLearner: streams in chunks, parameters updated while the stream flows."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import snnplast as sp
from snnplast.online import online_loss_and_grad


def _sq(o, y):
    return jnp.sum((o - y) ** 2)


def _model(key):
    return sp.Sequential([sp.RNN(2, 8, key=key), sp.LI(8, 1, key=key, kappa=0.0)])


def _stream(key, n):
    u = jax.random.normal(key, (n, 2))
    y = jnp.concatenate([jnp.zeros((2, 1)), 0.5 * u[:-2, :1]], axis=0)  # a delayed copy
    return u, y


def test_chunks_equal_one_pass_and_the_sequence_gradient(getkey):
    model = _model(getkey())
    u, y = _stream(getkey(), 40)
    learner = sp.OnlineLearner(sp.Diagonal(), _sq, optax.sgd(0.1), every=1000)  # no update yet
    st1 = learner.init(model, jnp.zeros(2))
    _, st1, l1 = learner.update(model, st1, u, y)
    st2 = learner.init(model, jnp.zeros(2))
    _, st2, la = learner.update(model, st2, u[:25], y[:25])
    _, st2, lb = learner.update(model, st2, u[25:], y[25:])
    np.testing.assert_allclose(np.concatenate([la, lb]), l1, rtol=1e-6)
    g_chunked = learner.pending_gradients(model, st2)
    _, g_seq = online_loss_and_grad(model, u[None], y[None], sp.Diagonal(), _sq)
    for a, b in zip(jax.tree_util.tree_leaves(g_chunked), jax.tree_util.tree_leaves(g_seq)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert int(st2.updates) == 0 and int(st2.steps) == 40


def test_learns_while_the_stream_flows(getkey):
    model = _model(getkey())
    u, y = _stream(getkey(), 3000)
    learner = sp.OnlineLearner(sp.Diagonal(), _sq, optax.adam(3e-3), every=1)
    st = learner.init(model, jnp.zeros(2))
    means = []
    for c in range(0, 3000, 500):
        model, st, losses = learner.update(model, st, u[c:c + 500], y[c:c + 500])
        means.append(float(jnp.mean(losses)))
    assert int(st.updates) == 3000
    assert means[-1] < 0.5 * means[0], means


def test_parallel_streams_and_bad_arguments(getkey):
    model = _model(getkey())
    u, y = _stream(getkey(), 20)
    learner = sp.OnlineLearner(sp.Exact(), _sq, every=5)
    st = learner.init(model, jnp.zeros(2), batch=3)
    model2, st, losses = learner.update(model, st, jnp.stack([u] * 3), jnp.stack([y] * 3))
    assert losses.shape == (20,) and int(st.updates) == 4
    assert not np.allclose(model2.layers[0].w_in, model.layers[0].w_in)
    with pytest.raises(ValueError, match="every must be a positive integer, got 0"):
        sp.OnlineLearner(sp.Diagonal(), _sq, every=0)
    with pytest.raises(TypeError, match="transport policy"):
        sp.OnlineLearner("diagonal", _sq)
