"""A learned initial state under online methods (``snnplast.online.FixedStart``): the start is
computed inside the first step, so every method gets ``d loss / d h0`` as BPTT does (Exact to
1e-10 in float64 against ``jax.grad`` of a Python loop), in a network, in blocks, in the learner
and per head. The local cell of ``tests/user_cells_more.py`` (``learned_start``) also runs in
``tests/test_user_models.py``'s sweeps and trains through ``compare`` and the command line."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from numerics import f64, loop_reference, rel

import snnplast as sp
from snnplast.online import FixedStart, OnlineStep, fixed_start, online_loss_and_grad
from snnplast.online._head_gathered import GatheredHeadStep

N_IN, N, T = 3, 4, 6


def sq(out, y):
    return jnp.sum((out - y) ** 2)


class LearnedRNN(sp.Cell):
    """A recurrent rate unit whose start ``tanh(h0)`` is trained, beside an ``int32`` count."""

    w: jax.Array
    r: jax.Array
    h0: jax.Array

    def initial_state(self):
        return jnp.tanh(self.h0), jnp.zeros((), jnp.int32)

    def __call__(self, state, x):
        h, t = state
        h = 0.8 * jnp.tanh(self.r @ h + self.w @ x) + 0.2 * h
        return (h, t + 1), h * jnp.where(t > 0, 1.0, 0.5)


class LearnedHeads(sp.Cell):
    """Per-head recurrent state ``[heads, d]`` started from a trained ``s0``."""

    w: jax.Array
    r: jax.Array
    s0: jax.Array

    def initial_state(self):
        return self.s0

    def __call__(self, h, x):
        heads, d = self.s0.shape
        h = jnp.tanh(jnp.einsum("hij,hj->hi", self.r, h) + (self.w @ x).reshape(heads, d))
        return h, h.reshape(-1)


def _rnn(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return LearnedRNN(jax.random.normal(k1, (N, N_IN)), jax.random.normal(k2, (N, N)) * 0.5,
                      jax.random.normal(k3, (N,)))


def _problem(cell, key, steps=T):
    k1, k2 = jax.random.split(key)
    xs = jax.random.normal(k1, (steps, N_IN), jnp.float64)
    _, outs = jax.lax.scan(lambda s, x: cell(s, x), cell.initial_state(), xs)
    return xs, jax.random.normal(k2, outs.shape, jnp.float64)


def _grad(cell, xs, ys, method, **kw):
    g = sp.gradients(cell, xs, ys, method=method, loss=sq, key=jax.random.PRNGKey(3), **kw)
    return eqx.filter(g, eqx.is_inexact_array)


@pytest.mark.slow
def test_recurrent_every_policy(x64, getkey):
    """Exact and RandomK(n) are exact on the recurrent cell, h0 included; Diagonal is not (the
    recurrence), but its blocks equal its step recursion."""
    cell = f64(_rnn(getkey()))
    assert isinstance(fixed_start(cell), FixedStart)
    xs, ys = _problem(cell, getkey())
    ref = loop_reference(cell, xs, ys)
    assert float(jnp.abs(ref.h0).max()) > 1e-3
    assert rel(_grad(cell, xs, ys, sp.Exact()), ref) <= 1e-10
    assert rel(_grad(cell, xs, ys, sp.RandomK(N)), ref) <= 1e-10
    step = _grad(cell, xs, ys, sp.Diagonal(), block=1)
    assert rel(step, ref) > 1e-6
    assert rel(_grad(cell, xs, ys, sp.Diagonal(), block=3), step) <= 1e-12
    # Messages and `snnplast inspect` name the cell's own leaves and parameters (and the flag).
    runner = OnlineStep(cell, xs[0], sp.Exact(), sq)
    assert runner.state_names == ["h", "t", "started"]
    assert "h0" in " ".join(runner.param_names)


@pytest.mark.slow
def test_in_a_network_and_the_learner(x64, getkey):
    """A learned-start layer under a readout: layers stay layers (only the first is wrapped);
    the learner's chunks accumulate the loop's gradient, and its updates in blocks equal its
    updates step by step."""
    k1, k2 = jax.random.split(getkey())
    net = f64(sp.Sequential([_rnn(k1), sp.LI(N, 2, key=k2)]))
    wrapped = fixed_start(net)
    assert isinstance(wrapped.layers[0], FixedStart) and wrapped.layers[1] is net.layers[1]
    xs, ys = _problem(net, getkey())
    ref = loop_reference(net, xs, ys)
    assert rel(_grad(net, xs, ys, sp.Exact()), ref) <= 1e-10
    learner = sp.OnlineLearner(sp.Exact(), sq, optax.sgd(0.0), every=1000)
    state = learner.init(net, xs[0])
    _, state, _ = learner.update(net, state, xs[:2], ys[:2])
    _, state, _ = learner.update(net, state, xs[2:], ys[2:])
    pending = eqx.filter(learner.pending_gradients(net, state), eqx.is_inexact_array)
    assert rel(pending, ref) <= 1e-10
    models = {}
    for block in (1, 3):
        learner = sp.OnlineLearner(sp.Diagonal(), sq, optax.sgd(0.05), every=3, block=block)
        state = learner.init(net, xs[0])
        model, state, losses = learner.update(net, state, xs, ys)
        assert type(model.layers[0]) is LearnedRNN
        models[block] = (eqx.filter(model, eqx.is_inexact_array), losses)
    assert rel(models[3][0], models[1][0]) <= 1e-12
    np.testing.assert_allclose(models[3][1], models[1][1], rtol=1e-12)
    moved = models[1][0].layers[0].h0 - net.layers[0].h0
    assert float(jnp.abs(moved).max()) > 1e-6  # the start itself was trained


@pytest.mark.slow
def test_head_sparse_learned_start_per_head(x64, getkey):
    k1, k2, k3 = jax.random.split(getkey(), 3)
    cell = f64(LearnedHeads(jax.random.normal(k1, (N, N_IN)),
                            jax.random.normal(k2, (2, 2, 2)), jax.random.normal(k3, (2, 2))))
    xs, ys = _problem(cell, getkey())
    ref = loop_reference(cell, xs, ys)
    assert rel(_grad(cell, xs, ys, sp.HeadSparse(1.0)), ref) <= 1e-10
    runner = OnlineStep(cell, xs[0], sp.HeadSparse(0.5), sq)
    assert GatheredHeadStep.why_not(runner) is None  # the flag has no head to select
    key = getkey()
    _, gathered = online_loss_and_grad(cell, xs[None], ys[None], sp.HeadSparse(0.5), sq,
                                       key=key)
    _, every = online_loss_and_grad(cell, xs[None], ys[None], sp.HeadSparse(0.5), sq, key=key,
                                    block=3)
    assert rel(gathered, every) <= 1e-10


def test_master_user_lms_refuses_a_learned_start():
    """Master-User's own recursion (an LMS readout on one state vector) keeps its start fixed:
    one line naming the parameter, before any work."""
    from snnplast.online import master_user_lms

    cell = LearnedRNN(jnp.ones((N, N_IN)), jnp.ones((N, N)), jnp.ones(N))
    xs = jnp.zeros((T, N_IN))
    with pytest.raises(ValueError, match="master_user_lms needs a fixed initial state; "
                                         "LearnedRNN's depends on the trainable parameter h0"):
        master_user_lms(cell, xs, jnp.zeros(T), alpha=0.1)
