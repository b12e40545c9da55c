"""TruncatedBPTT against an explicit truncated reference, and its limits (Immediate, BPTT)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cell_zoo import BUILTIN
from numerics import f64, problem, rel, sq

import snnplast as sp

T = 7


def _reference(cell, xs, ys, window):
    """Python loops: for every t, re-run steps max(0, t-window+1)..t from the stopped state."""
    params, static = eqx.partition(cell, eqx.is_inexact_array)
    states = [cell.initial_state()]
    for t in range(T):
        states.append(cell(states[-1], xs[t])[0])

    def total(params):
        c = eqx.combine(params, static)
        loss = 0.0
        for t in range(T):
            start = max(0, t - window + 1)
            s = jax.lax.stop_gradient(states[start])
            for i in range(start, t + 1):
                s, out = c(s, xs[i])
            loss = loss + sq(out, ys[t])
        return loss

    return jax.grad(total)(params)


@pytest.mark.parametrize(("name", "window"), [("rnn", 1), ("lstm", 3), ("rlif", 3)])
def test_truncated_bptt_equals_explicit_reference(name, window, x64, getkey):
    cell = f64(BUILTIN[name](getkey()))
    xs, ys = problem(cell, getkey(), T)
    got = sp.gradients(cell, xs, ys, loss=sq, method=sp.TruncatedBPTT(window, chunk=3))
    ref = _reference(cell, xs, ys, window)
    assert rel(got, ref) <= 1e-10
    # a window is an approximation: with recurrence it differs from BPTT
    assert rel(got, sp.gradients(cell, xs, ys, loss=sq)) > 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gru"])
def test_truncated_bptt_limits(name, x64, getkey):
    cell = f64(BUILTIN[name](getkey()))
    xs, ys = problem(cell, getkey(), T)
    bptt = sp.gradients(cell, xs, ys, loss=sq)
    assert rel(sp.gradients(cell, xs, ys, loss=sq, method=sp.TruncatedBPTT(T)), bptt) <= 1e-10
    imm = sp.gradients(cell, xs, ys, loss=sq, method=sp.Immediate())
    assert rel(sp.gradients(cell, xs, ys, loss=sq, method=sp.TruncatedBPTT(2)), imm) <= 1e-10


def test_truncated_bptt_batched_and_parsed(x64, getkey):
    from snnplast.train._method import parse_method

    cell = f64(BUILTIN["rnn"](getkey()))
    xs = jnp.stack([problem(cell, getkey(), T)[0] for _ in range(3)])
    ys = jax.random.normal(getkey(), xs.shape[:2] + (cell.w_rec.shape[0],), jnp.float64)
    method = parse_method("tbptt:3")
    assert method == sp.TruncatedBPTT(3)
    loss, grads = method.loss_and_grad(cell, xs, ys, sq)
    per = [sp.gradients(cell, xs[b], ys[b], loss=sq, method=method) for b in range(3)]
    mean = jax.tree_util.tree_map(lambda *g: sum(g) / 3, *per)
    assert rel(grads, mean) <= 1e-12
    ref_loss = np.mean([float(sp.sequence_loss(cell, xs[b], ys[b], sq)) for b in range(3)])
    np.testing.assert_allclose(float(loss), ref_loss, rtol=1e-12)


def test_one_target_per_sequence_is_read_in_place(getkey):
    # Labels [B, 1] (what the trainer passes) give exactly what labels broadcast to [B, T] do.
    from snnplast.train._objective import cross_entropy, loss_and_grad

    model = BUILTIN["rnn"](getkey())  # its 4 outputs read as class scores
    x = jax.random.normal(getkey(), (3, T, 5))
    y = jnp.array([1, 0, 3], jnp.int32)
    method = sp.TruncatedBPTT(3, chunk=2)

    @jax.jit
    def both_ways(model, x, y):
        broadcast = jnp.broadcast_to(y[:, None], x.shape[:2])
        (loss, scores), grads = loss_and_grad(model, x, y, method)  # the trainer's: [B, 1]
        return (method.loss_and_grad(model, x, broadcast, cross_entropy, with_scores=True),
                (loss, grads, scores))  # fmt: skip

    want, got = both_ways(model, x, y)
    for a, b in zip(jax.tree_util.tree_leaves(want), jax.tree_util.tree_leaves(got), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"T = 7 \(the inputs' steps\) or 1 .* shape \(3, 2\)"):
        method.loss_and_grad(model, x, jnp.zeros((3, 2), jnp.int32), cross_entropy)


def test_truncated_bptt_bad_input():
    from snnplast.train._method import parse_method

    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="window must be a positive integer"):
            sp.TruncatedBPTT(bad)
    with pytest.raises(ValueError, match="tbptt:0"):
        parse_method("tbptt:0")
    with pytest.raises(ValueError, match="needs an argument"):
        parse_method("tbptt")
    with pytest.raises(ValueError, match="no meaning"):
        parse_method("tbptt:4", lam=0.5)
