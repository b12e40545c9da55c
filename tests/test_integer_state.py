"""Integer and boolean state leaves (a refractory counter, a step count, a flag) under every
online method: carried with the state, never traced, and exact where the method is, in float64
against ``jax.grad`` of a Python loop over the steps."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from numerics import f64, loop_reference, rel
from user_cells_more import spike_fn

import snnplast as sp
from snnplast.online import OnlineStep, accumulation_mode, online_loss_and_grad
from snnplast.online._head_gathered import GatheredHeadStep

N_IN, N, T = 3, 4, 8


def sq(out, y):
    return jnp.sum((out - y) ** 2)


class RefractoryLIF(sp.Cell):
    """A LIF neuron whose ``int32`` counter holds the membrane still for `n_ref` steps after a
    spike: no derivative of its own, but it switches each step's Jacobian between 0.9 and 1."""

    w: jax.Array
    n_ref: int = eqx.field(static=True, default=2)

    def initial_state(self):
        n = self.w.shape[0]
        return jnp.zeros(n), jnp.zeros(n, jnp.int32)

    def __call__(self, state, x):
        v, ref = state
        v = jnp.where(ref > 0, v, 0.9 * v + self.w @ x)
        z = spike_fn(v - 1.0)
        ref = jnp.where(z > 0.5, self.n_ref, jnp.maximum(ref - 1, 0))
        return (v - z, ref), z


class FlaggedRNN(sp.Cell):
    """A recurrent spiking unit with a ``bool`` leaf (has it fired yet: a higher threshold once it
    has) and an ``int32`` scalar step count (its output is gated off for the first step)."""

    w: jax.Array
    r: jax.Array

    def initial_state(self):
        n = self.w.shape[0]
        return {"v": jnp.zeros(n), "z": jnp.zeros(n), "fired": jnp.zeros(n, bool),
                "t": jnp.zeros((), jnp.int32)}

    def __call__(self, s, x):
        v = 0.8 * s["v"] + self.w @ x + self.r @ s["z"]
        z = spike_fn(v - jnp.where(s["fired"], 1.3, 0.8))
        new = {"v": v - z, "z": z, "fired": s["fired"] | (z > 0.5), "t": s["t"] + 1}
        return new, jnp.where(s["t"] > 0, z, 0.0) + 0.1 * v


class CountedHeads(sp.Cell):
    """Per-head recurrent state ``[heads, d]`` beside an ``int32`` per-head count of the steps
    its activity was high, which damps the head's input."""

    w: jax.Array
    r: jax.Array

    def initial_state(self):
        heads, d, _ = self.r.shape
        return jnp.zeros((heads, d)), jnp.zeros(heads, jnp.int32)

    def __call__(self, state, x):
        h, count = state
        heads, d, _ = self.r.shape
        gain = 1.0 / (1.0 + count.astype(h.dtype))
        h = jnp.tanh(jnp.einsum("hij,hj->hi", self.r, h)
                     + gain[:, None] * (self.w @ x).reshape(heads, d))
        count = count + (jnp.mean(h, axis=1) > 0.0).astype(jnp.int32)
        return (h, count), h.reshape(-1)


@pytest.fixture
def rng():
    # NumPy draws: jax.random in float64 compiles once per shape (seconds in a small test).
    return np.random.default_rng(20)


def _normal(rng, shape, scale=1.0):
    return jnp.asarray(rng.normal(size=shape) * scale)


def _refractory(rng):
    return RefractoryLIF(_normal(rng, (N, N_IN), 1.5))


def _flagged(rng):
    return FlaggedRNN(_normal(rng, (N, N_IN), 1.5), _normal(rng, (N, N)))


def _heads(rng):
    return CountedHeads(_normal(rng, (N, N_IN)), _normal(rng, (2, 2, 2)))


def _problem(cell, rng, steps=T):
    """Inputs ``[steps, N_IN]``, random targets and the states the cell goes through."""
    xs = _normal(rng, (steps, N_IN), 1.5)

    def step(s, x):
        new, o = cell(s, x)
        return new, (new, o)

    _, (states, outs) = jax.lax.scan(step, cell.initial_state(), xs)
    ys = _normal(rng, outs.shape)
    return xs, ys, states


def _grad(cell, xs, ys, method, **kw):
    g = sp.gradients(cell, xs, ys, method=method, loss=sq, key=jax.random.PRNGKey(3), **kw)
    return eqx.filter(g, eqx.is_inexact_array)


def _case(make, rng):
    cell = f64(make(rng))
    xs, ys, states = _problem(cell, rng)
    return cell, xs, ys, states, loop_reference(cell, xs, ys)


def _counter_engaged(states):
    """The integer leaves (``[T, ...]``) took more than one value along the sequence (else they
    test nothing)."""
    ints = [np.asarray(a) for a in jax.tree_util.tree_leaves(states)
            if not jnp.issubdtype(a.dtype, jnp.inexact)]
    return bool(ints) and all(len(np.unique(a)) > 1 for a in ints)


# ----- default: the refractory LIF under Exact ------------------------------------------------
def test_refractory_counter_exact_equals_the_loop(x64, rng):
    cell, xs, ys, states, ref = _case(_refractory, rng)
    assert _counter_engaged(states)
    refractory = np.asarray(states[1])
    assert (refractory > 0).any() and (refractory == 0).any()
    assert rel(_grad(cell, xs, ys, sp.Exact()), ref) <= 1e-10


@pytest.mark.slow
def test_bool_flag_and_step_count_exact_equals_the_loop(x64, rng):
    cell, xs, ys, states, ref = _case(_flagged, rng)
    assert _counter_engaged(states)
    assert rel(_grad(cell, xs, ys, sp.Exact()), ref) <= 1e-10


# ----- slow: every other policy, blocks, HeadSparse, the learner -------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("make", [_refractory, _flagged], ids=["refractory", "flagged"])
def test_every_policy_runs_and_the_exact_ones_match(make, x64, rng):
    cell, xs, ys, _, ref = _case(make, rng)
    n_traced = sum(int(np.prod(s.shape)) for s in jax.tree_util.tree_leaves(cell.initial_state())
                   if jnp.issubdtype(s.dtype, jnp.inexact))
    assert rel(_grad(cell, xs, ys, sp.RandomK(n_traced)), ref) <= 1e-10  # k = n is Exact
    assert rel(_grad(cell, xs, ys, sp.Exact(), block=4), ref) <= 1e-10
    for policy in (sp.Diagonal(), sp.Immediate(), sp.RandomK(2), sp.ColumnarPolicy(),
                   sp.Diagonal(lam=0.5)):
        step = _grad(cell, xs, ys, policy, block=1)
        assert np.isfinite(rel(step, ref))
        # A policy whose carried H is not per unit (RandomK on a recurrent cell) runs step by
        # step whatever the block: then this is the same computation twice.
        assert rel(_grad(cell, xs, ys, policy, block=3), step) <= 1e-12, policy
    if make is _refractory:  # local: Columnar and Diagonal are exact, in blocks too
        assert accumulation_mode(OnlineStep(cell, xs[0], sp.Diagonal(), sq))[0] == "blocked"
        assert rel(_grad(cell, xs, ys, sp.ColumnarPolicy()), ref) <= 1e-10
        assert rel(_grad(cell, xs, ys, sp.Diagonal(), block=1), ref) <= 1e-10
        assert rel(_grad(cell, xs, ys, sp.Diagonal(), block=3), ref) <= 1e-10
    else:  # recurrent: Diagonal approximates, and the check above could fail
        assert rel(_grad(cell, xs, ys, sp.Diagonal()), ref) > 1e-6


@pytest.mark.slow
def test_integer_leaves_inside_a_network(x64, rng):
    """The refractory layer under a leaky readout, as the trainer builds a network, and the
    flagged unit after it: integer leaves between floating ones, in a Sequential."""
    flagged = FlaggedRNN(_normal(rng, (N, N)), _normal(rng, (N, N), 0.5))
    net = f64(sp.Sequential([_refractory(rng), flagged, sp.LI(N, 2, key=jax.random.PRNGKey(5))]))
    xs, ys, _ = _problem(net, rng)
    ref = loop_reference(net, xs, ys)
    assert rel(_grad(net, xs, ys, sp.Exact()), ref) <= 1e-10
    diag = _grad(net, xs, ys, sp.Diagonal(), block=1)
    assert rel(_grad(net, xs, ys, sp.Diagonal()), diag) <= 1e-12


@pytest.mark.slow
def test_head_sparse_with_a_counter_per_head(x64, rng, getkey):
    """HeadSparse stores the selected heads' traces (the gathered path: the counter has no head
    to select) and at fraction 1 is exact."""
    cell, xs, ys, states, ref = _case(_heads, rng)
    assert _counter_engaged(states)
    runner = OnlineStep(cell, xs[0], sp.HeadSparse(0.5), sq)
    assert GatheredHeadStep.why_not(runner) is None
    assert rel(_grad(cell, xs, ys, sp.HeadSparse(1.0)), ref) <= 1e-10
    key = getkey()
    _, gathered = online_loss_and_grad(cell, xs[None], ys[None], sp.HeadSparse(0.5), sq,
                                       key=key)
    _, every = online_loss_and_grad(cell, xs[None], ys[None], sp.HeadSparse(0.5), sq,
                                    key=key, block=4)
    assert rel(gathered, every) <= 1e-10


@pytest.mark.slow
@pytest.mark.parametrize("make", [_refractory, _flagged], ids=["refractory", "flagged"])
def test_learner_chunks_and_blocks(make, x64, rng):
    """OnlineLearner: chunks fed one after another accumulate the loop's gradient (Exact), and
    updates every 2 steps give the same parameters in blocks as step by step (Diagonal)."""
    cell, xs, ys, _, ref = _case(make, rng)
    learner = sp.OnlineLearner(sp.Exact(), sq, optax.sgd(0.0), every=1000)
    state = learner.init(cell, xs[0])
    _, state, _ = learner.update(cell, state, xs[:3], ys[:3])
    _, state, _ = learner.update(cell, state, xs[3:], ys[3:])
    assert rel(eqx.filter(learner.pending_gradients(cell, state), eqx.is_inexact_array),
               ref) <= 1e-10
    models = {}
    for block in (1, 2):
        learner = sp.OnlineLearner(sp.Diagonal(), sq, optax.sgd(0.05), every=2, block=block)
        state = learner.init(cell, xs[0])
        model, state, losses = learner.update(cell, state, xs, ys)
        assert int(state.updates) == T // 2
        models[block] = (eqx.filter(model, eqx.is_inexact_array), losses)
    assert rel(models[2][0], models[1][0]) <= 1e-12
    np.testing.assert_allclose(models[2][1], models[1][1], rtol=1e-12)
    assert rel(models[1][0], eqx.filter(cell, eqx.is_inexact_array)) > 1e-6  # it did learn


@pytest.mark.slow
def test_long_sequence_in_contraction_chunks(x64, rng):
    """Past 32 steps the step recursion contracts traces in chunks (the left-over steps first):
    the counter is carried through them."""
    cell = f64(_refractory(rng))
    xs, ys, _ = _problem(cell, rng, steps=40)
    ref = loop_reference(cell, xs, ys)
    assert rel(_grad(cell, xs, ys, sp.Exact()), ref) <= 1e-10
    assert rel(_grad(cell, xs, ys, sp.Diagonal(), block=1), ref) <= 1e-10
