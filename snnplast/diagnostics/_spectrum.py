"""Singular values and condition numbers of the recurrent Jacobian and of the influence matrix."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._cell import Cell
from .._rollout import unroll


class Spectrum(NamedTuple):
    """Singular values (descending) and condition numbers ``sigma_max / sigma_min``.

    - `singular_values`: ``[T, r]`` (one row per step) or ``[r]``;
    - `condition`: ``[T]`` or a scalar (inf where the smallest singular value is 0).
    """

    singular_values: np.ndarray
    condition: np.ndarray


def _spectrum(m):
    s = jnp.linalg.svd(m, compute_uv=False)
    return s, jnp.where(s[..., -1] > 0, s[..., 0] / s[..., -1], jnp.inf)


def jacobian_spectrum(model: Cell, inputs, state=None) -> Spectrum:
    """Spectrum of ``H_t = d s_t / d s_{t-1}`` at every step of a sequence.

    The whole state (every leaf, flattened into one vector of size ``n``) is one block, so
    ``H_t`` is ``n x n``: the operator that exact RTRL applies to its trace at each step.

    **Arguments:** `model` a :class:`snnplast.Cell`; `inputs` ``[T, ...]``; `state` where to
    start (default: the model's initial state).

    **Returns:** a :class:`Spectrum` with ``singular_values [T, n]`` and ``condition [T]``.
    """
    if not isinstance(model, Cell):
        raise TypeError(f"model must be a snnplast.Cell, got {type(model).__name__}")
    state = model.initial_state() if state is None else state
    _, unravel = ravel_pytree(state)

    def jac(s, x):
        def f(flat):
            return ravel_pytree(model(unravel(flat), x)[0])[0]

        flat = ravel_pytree(s)[0]
        return model(s, x)[0], jax.jacfwd(f)(flat)

    _, hs = jax.jit(lambda s, xs: jax.lax.scan(jac, s, xs))(state, inputs)
    s, cond = jax.jit(_spectrum)(hs)
    return Spectrum(np.asarray(s), np.asarray(cond))


def influence_spectrum(model: Cell, inputs, where: Callable | None = None, state=None) -> Spectrum:
    """Spectrum of the exact influence matrix ``G_T = d s_T / d theta`` after a sequence.

    ``G_T`` (state size ``n`` by the number of selected parameters) is the trace exact RTRL
    carries; computed here by reverse mode through the unrolled sequence (``n`` backward
    passes), independently of the trace engine. The sparse-RTRL paper reports the condition
    number of this matrix for ``W_rec`` (``n x n^2``).

    **Arguments:**

    - `model`, `inputs` ``[T, ...]``, `state` as in :func:`jacobian_spectrum`.
    - `where`: selects the parameter arrays, e.g. ``lambda m: m.layers[0].w_rec`` (default:
      every trainable array).

    **Returns:** a :class:`Spectrum` with ``singular_values [min(n, |theta|)]`` and a scalar
    ``condition``.
    """
    if not isinstance(model, Cell):
        raise TypeError(f"model must be a snnplast.Cell, got {type(model).__name__}")
    params, static = eqx.partition(model, eqx.is_inexact_array)
    chosen = params if where is None else where(params)
    flat0, unravel = ravel_pytree(chosen)
    if flat0.size == 0:
        raise ValueError("influence_spectrum: `where` selected no trainable array")

    def final_state(flat):
        p = unravel(flat) if where is None else eqx.tree_at(where, params, unravel(flat))
        m = eqx.combine(p, static)
        s, _ = unroll(m, inputs, state)
        return ravel_pytree(s)[0]

    g = jax.jit(jax.jacrev(final_state))(flat0)
    s, cond = _spectrum(g)
    return Spectrum(np.asarray(s), np.asarray(cond))
