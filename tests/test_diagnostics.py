"""snnplast.diagnostics against independent references (explicit loops, jax.jacfwd, numpy SVD)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cell_zoo import BUILTIN, N_IN
from jax.flatten_util import ravel_pytree
from numerics import f64, problem, sq

import snnplast as sp
from snnplast import diagnostics

T = 6


def _flat(tree):
    return np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(tree)])


@pytest.mark.slow
def test_gradient_alignment_matches_explicit_per_step_gradients(x64, getkey):
    cell = f64(BUILTIN["rnn"](getkey()))
    xs, ys = problem(cell, getkey(), T)
    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def loss_at(p, t):  # BPTT of the loss of step t alone
        c = eqx.combine(p, static)
        s = c.initial_state()
        for i in range(t + 1):
            s, out = c(s, xs[i])
        return sq(out, ys[t])

    exact = [_flat(jax.grad(loss_at)(params, t)) for t in range(T)]
    # Diagonal's per-step gradient: the growth of its whole-prefix gradient over one step.
    prefix = [np.zeros_like(exact[0])] + [
        _flat(sp.gradients(cell, xs[: t + 1], ys[: t + 1], loss=sq, method=sp.Diagonal()))
        for t in range(T)]
    diag = [prefix[t + 1] - prefix[t] for t in range(T)]
    cos = [a @ b / np.linalg.norm(a) / np.linalg.norm(b) for a, b in zip(diag, exact)]
    ratio = [np.linalg.norm(a) / np.linalg.norm(b) for a, b in zip(diag, exact)]
    cum_d, cum_e = np.cumsum(diag, axis=0), np.cumsum(exact, axis=0)
    cum = [a @ b / np.linalg.norm(a) / np.linalg.norm(b) for a, b in zip(cum_d, cum_e)]

    al = diagnostics.gradient_alignment(cell, xs, ys, sp.Diagonal(), sq)
    np.testing.assert_allclose(al.cosine, cos, atol=1e-10)
    np.testing.assert_allclose(al.norm_ratio, ratio, rtol=1e-10)
    np.testing.assert_allclose(al.cumulative_cosine, cum, atol=1e-10)
    assert min(cos[1:]) < 1 - 1e-6  # a recurrent cell: Diagonal is not exact after step 0


def test_jacobian_spectrum_matches_jacfwd(x64, getkey):
    cell = f64(BUILTIN["lstm"](getkey()))  # a tuple state: flattened into one vector
    xs, _ = problem(cell, getkey(), T)
    spec = diagnostics.jacobian_spectrum(cell, xs)
    s = cell.initial_state()
    for t in range(T):
        flat, unravel = ravel_pytree(s)

        def step(v, unravel=unravel, x=xs[t]):
            return ravel_pytree(cell(unravel(v), x)[0])[0]

        h = jax.jacfwd(step)(flat)
        sv = np.linalg.svd(np.asarray(h), compute_uv=False)
        np.testing.assert_allclose(spec.singular_values[t], sv, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(spec.condition[t], sv[0] / sv[-1], rtol=1e-8)
        s = cell(s, xs[t])[0]
    assert spec.singular_values.shape == (T, 8)


def test_influence_spectrum_matches_forward_mode(x64, getkey):
    cell = f64(BUILTIN["rnn"](getkey()))
    xs, _ = problem(cell, getkey(), T)

    def final(w):
        c = eqx.tree_at(lambda m: m.w_rec, cell, w)
        s = c.initial_state()
        for t in range(T):
            s, _ = c(s, xs[t])
        return s

    g = jax.jacfwd(final)(cell.w_rec).reshape(cell.w_rec.shape[0], -1)
    sv = np.linalg.svd(np.asarray(g), compute_uv=False)
    spec = diagnostics.influence_spectrum(cell, xs, where=lambda m: m.w_rec)
    np.testing.assert_allclose(spec.singular_values, sv, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(spec.condition, sv[0] / sv[-1], rtol=1e-8)
    every = diagnostics.influence_spectrum(cell, xs)
    assert every.singular_values.shape == (4,)


def test_diagnostics_bad_input_and_plots(getkey, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    cell = BUILTIN["rnn"](getkey())
    xs = jnp.ones((T, N_IN))
    ys = jnp.zeros((T, 4))
    with pytest.raises(TypeError, match="snnplast.Cell"):
        diagnostics.gradient_alignment(lambda s, x: (s, x), xs, ys, sp.Diagonal(), sq)
    with pytest.raises(TypeError, match="transport policy"):
        diagnostics.gradient_alignment(cell, xs, ys, "diagonal", sq)
    with pytest.raises(ValueError, match="same number of time steps"):
        diagnostics.gradient_alignment(cell, xs, ys[:3], sp.Diagonal(), sq)
    with pytest.raises(TypeError, match="snnplast.Cell"):
        diagnostics.jacobian_spectrum("rnn", xs)
    al = diagnostics.gradient_alignment(cell, xs, ys, sp.Immediate(), sq)
    ax = diagnostics.plot_alignment(al, label="immediate", smooth=2)
    diagnostics.plot_spectrum(diagnostics.jacobian_spectrum(cell, xs), ax=None, label="H")
    ax.figure.savefig(tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 0
    assert len(ax.lines) == 1
