"""BPTT through ``lax.scan`` against independent references, for every built-in cell.

Each entry of ``CELLS`` builds one cell; registering a cell there tests it. Two references:

- ``jax.grad`` of a hand-written Python loop over the same step (no ``lax.scan``): the two must
  agree leaf by leaf in float32.
- For cells without a spike (smooth everywhere), central finite differences in float64 along
  random directions in parameter space.
"""

import dataclasses
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import snnplast

N_IN = 5
N_HIDDEN = 6
T = 6


@dataclasses.dataclass(frozen=True)
class CellCase:
    build: Callable  # key -> Cell, with inputs of size N_IN
    smooth: bool  # no Heaviside anywhere: finite differences apply
    input_scale: float = 1.0  # large enough that spiking cells fire within T steps


def _lif(**kwargs):
    return CellCase(lambda key: snnplast.LIF(N_IN, N_HIDDEN, key=key, **kwargs), False, 4.0)


def _alif(**kwargs):
    return CellCase(lambda key: snnplast.ALIF(N_IN, N_HIDDEN, key=key, **kwargs), False, 4.0)


def _two_layers(key):
    k1, k2 = jax.random.split(key)
    return snnplast.Sequential(
        [snnplast.LIF(N_IN, N_HIDDEN, key=k1, recurrent=True), snnplast.LI(N_HIDDEN, 3, key=k2)]
    )


def _two_smooth_layers(key):
    k1, k2 = jax.random.split(key)
    return snnplast.Sequential(
        [snnplast.GRU(N_IN, N_HIDDEN, key=k1), snnplast.LI(N_HIDDEN, 3, key=k2)]
    )


CELLS = {
    **{
        f"lif-{reset}-{'detached' if detach else 'attached'}-{'rec' if rec else 'ff'}": _lif(
            reset=reset, detach_reset=detach, recurrent=rec
        )
        for reset in ("subtract", "zero")
        for detach in (True, False)
        for rec in (False, True)
    },
    "alif-ff": _alif(recurrent=False),
    "alif-rec": _alif(recurrent=True),
    "alif-rec-attached": _alif(recurrent=True, detach_reset=False),
    "li": CellCase(lambda key: snnplast.LI(N_IN, N_HIDDEN, key=key), True),
    "rnn": CellCase(lambda key: snnplast.RNN(N_IN, N_HIDDEN, key=key), True),
    "lstm": CellCase(lambda key: snnplast.LSTM(N_IN, N_HIDDEN, key=key), True),
    "gru": CellCase(lambda key: snnplast.GRU(N_IN, N_HIDDEN, key=key), True),
    "attention": CellCase(
        lambda key: snnplast.LinearAttention(N_IN, d_model=8, n_heads=2, key=key, decay=0.9), True
    ),
    "columnar-isolated": CellCase(
        lambda key: snnplast.Columnar(N_IN, N_HIDDEN, key=key, n_features=3, decay=0.5), True
    ),
    "columnar-lateral": CellCase(
        lambda key: snnplast.Columnar(
            N_IN, N_HIDDEN, key=key, n_features=3, lateral_density=0.5, decay=0.5
        ),
        True,
    ),
    "sequential-lif-li": CellCase(_two_layers, False, 4.0),
    "sequential-gru-li": CellCase(_two_smooth_layers, True),
}
SMOOTH = [name for name, case in CELLS.items() if case.smooth]


def _loss(out, target):
    # Quadratic with a linear term: its gradient depends on the output's value and sign.
    return jnp.sum((out - target) ** 2) + jnp.sum(jnp.sin(out))


def _problem(case, key, dtype=jnp.float32):
    """A cell, inputs [T, N_IN] and per-step targets shaped like the cell's output."""
    k_model, k_x, k_y = jax.random.split(key, 3)
    model = _cast(case.build(k_model), dtype)
    xs = case.input_scale * jax.random.uniform(k_x, (T, N_IN), dtype)
    out = jax.eval_shape(lambda: model(model.initial_state(), xs[0])[1])
    ys = jax.random.normal(k_y, (T, *out.shape), dtype)
    return model, xs, ys


def _cast(model, dtype):
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, model
    )


def _loop_loss(model, xs, ys):
    # The reference unroll: a Python loop, so the derivative never passes through lax.scan.
    state = model.initial_state()
    total = jnp.zeros((), xs.dtype)
    for t in range(xs.shape[0]):
        state, out = model(state, xs[t])
        total = total + _loss(out, ys[t])
    return total


@eqx.filter_jit
def _bptt(model, xs, ys):
    return snnplast.gradients(model, xs, ys, method="bptt", loss=_loss)


def _params(tree):
    return jax.tree_util.tree_leaves_with_path(eqx.filter(tree, eqx.is_inexact_array))


@pytest.mark.parametrize("name", list(CELLS))
def test_bptt_matches_python_loop(name, getkey):
    model, xs, ys = _problem(CELLS[name], getkey())
    got = _bptt(model, xs, ys)
    want = eqx.filter_jit(eqx.filter_grad(_loop_loss))(model, xs, ys)
    got_leaves, want_leaves = _params(got), _params(want)
    assert [p for p, _ in got_leaves] == [p for p, _ in want_leaves]
    assert got_leaves, f"{name} has no trainable leaves"
    for (path, g), (_, w) in zip(got_leaves, want_leaves):
        where = f"{name}{jax.tree_util.keystr(path)}"
        assert g.shape == w.shape, where
        # A leaf with an all-zero gradient would make the comparison vacuous.
        assert np.any(np.asarray(w) != 0), f"{where}: reference gradient is identically zero"
        scale = float(jnp.max(jnp.abs(w)))
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * scale, err_msg=where)


@pytest.mark.parametrize("name", [
    # these are also checked against a Python loop in the default suite
    pytest.param(n, marks=pytest.mark.slow)
    if n in ("attention", "columnar-isolated", "lstm", "gru", "sequential-gru-li") else n
    for n in SMOOTH])
def test_bptt_matches_finite_differences(name, getkey, x64):
    model, xs, ys = _problem(CELLS[name], getkey(), jnp.float64)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    assert all(a.dtype == jnp.float64 for a in jax.tree_util.tree_leaves(params))

    def loss_of(p):
        return snnplast.sequence_loss(eqx.combine(p, static), xs, ys, _loss)

    grads = eqx.filter(_bptt(model, xs, ys), eqx.is_inexact_array)
    loss_of = jax.jit(loss_of)
    eps = 1e-6
    leaves, treedef = jax.tree_util.tree_flatten(params)
    for _ in range(3):
        keys = jax.random.split(getkey(), len(leaves))
        direction = jax.tree_util.tree_unflatten(
            treedef, [jax.random.normal(k, a.shape, a.dtype) for k, a in zip(keys, leaves)]
        )
        plus = jax.tree_util.tree_map(lambda p, d: p + eps * d, params, direction)
        minus = jax.tree_util.tree_map(lambda p, d: p - eps * d, params, direction)
        fd = (loss_of(plus) - loss_of(minus)) / (2 * eps)
        ad = sum(
            jnp.vdot(g, d)
            for g, d in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(direction))
        )
        np.testing.assert_allclose(fd, ad, rtol=1e-6, atol=1e-9, err_msg=name)
