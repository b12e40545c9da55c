"""Jit a function of a model's trainable arrays, holding every other array as static structure.

The trace engine reads the *values* of a cell's non-trainable arrays (a connectivity mask, an
integer index array): they decide the structure of each step's Jacobians. A jit that traces the
whole model turns them into tracers without values. They never change during training, so
snnplast's own jitted steps trace only the floating-point arrays and hold the rest as static
arguments, hashed and compared by value.
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np


class _Held:
    """One non-trainable array as static jit structure: hashed and compared by its values."""

    __slots__ = ("_hash", "_values", "array")

    def __init__(self, array):
        self.array = array  # the model's own array, concrete: what the jitted function sees
        self._values = np.asarray(array)
        self._hash = hash((self._values.shape, self._values.dtype.str, self._values.tobytes()))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        if not isinstance(other, _Held) or self._hash != other._hash:
            return False
        a, b = self._values, other._values
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))

    def __repr__(self) -> str:
        return f"Held({self._values.dtype}{list(self._values.shape)})"


def _is_held(leaf) -> bool:
    return isinstance(leaf, _Held)


def hold_static(model) -> tuple:
    """Split `model` into its trainable arrays and the rest, the rest hashable by value.

    **Arguments:**

    - `model`: any PyTree (a cell, a network).

    **Returns:** ``(params, held)``: `params` has the floating-point arrays (``None``
    elsewhere); `held` has everything else, each other array wrapped so that a jit takes it as
    static structure. Pass both to an ``eqx.filter_jit`` function and rebuild the model inside
    with :func:`rebuild`.
    """
    params, rest = eqx.partition(model, eqx.is_inexact_array)
    held = jax.tree_util.tree_map(lambda a: _Held(a) if eqx.is_array(a) else a, rest)
    return params, held


def rebuild(params, held):
    """The model :func:`hold_static` split, its held arrays concrete (values the engine reads).

    **Returns:** the model, its trainable arrays from `params`.
    """
    rest = jax.tree_util.tree_map(
        lambda a: a.array if _is_held(a) else a, held, is_leaf=_is_held
    )
    return eqx.combine(params, rest)
