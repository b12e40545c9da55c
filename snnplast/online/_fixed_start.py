"""A learned initial state for online methods: the start computed inside the first step.

Traces start at zero, which is right for a state that starts fixed. A cell whose
``initial_state()`` depends on trainable parameters (a learned ``h0``) needs its traces to start
at ``G_0 = d s_0 / d theta`` instead. :class:`FixedStart` gives exactly that with no special
case in the recursion: it starts from a fixed placeholder and a ``started`` flag, and its step
replaces the state by ``initial_state()`` while the flag is off. The learned start becomes part of
step 1, whose immediate term is then ``F_1 = H_1 G_0`` (the state's Jacobian times ``d s_0 /
d theta``), and after it ``G_t = A_t G_{t-1} + 0``: the flag is on, the start's parameters no
longer enter the step. The flag is a boolean state leaf: carried, never traced.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._cell import Cell, Sequential, initial_state_parameters


class FixedStart(Cell):
    """`cell` run from a fixed start, its learned initial state computed in the first step.

    The same outputs and the same gradients as `cell` from ``cell.initial_state()``; the state is
    ``(cell's state, started)``.
    """

    cell: Cell

    def initial_state(self):
        shapes = jax.eval_shape(self.cell.initial_state)
        placeholder = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        return placeholder, jnp.zeros((), bool)

    @property
    def input_shape(self):
        return self.cell.input_shape

    def __call__(self, state, x):
        s, started = state
        s = jax.tree_util.tree_map(lambda now, start: jnp.where(started, now, start), s,
                                   self.cell.initial_state())
        new, out = self.cell(s, x)
        return (new, jnp.ones((), bool)), out


def fixed_start(model: Cell) -> Cell:
    """`model` with each cell whose initial state is learned wrapped in :class:`FixedStart`
    (each layer of a :class:`snnplast.Sequential` on its own, so layers stay layers).

    **Returns:** `model` itself where no initial state depends on a trainable parameter.
    """
    if isinstance(model, Sequential):
        layers = [fixed_start(layer) for layer in model.layers]
        if all(new is old for new, old in zip(layers, model.layers)):
            return model
        return Sequential(layers)
    return FixedStart(model) if initial_state_parameters(model) else model


def without_fixed_start(tree):
    """A pytree shaped like the wrapped model (its gradients) shaped like the model again."""
    is_start = lambda node: isinstance(node, FixedStart)
    return jax.tree_util.tree_map(lambda node: node.cell if is_start(node) else node, tree,
                                  is_leaf=is_start)


def fixed_start_names(model: Cell, names: list[str]) -> list[str]:
    """The state names of ``fixed_start(model)`` from `names`, those of `model`'s state leaves:
    the same, with each wrapped cell's flag after its leaves (``layers[0].started``)."""
    return _names(model, list(names), "")[0]


def _names(cell, names, prefix):
    """``(names of the wrapped cell's leaves, how many of names were its own)``."""
    if isinstance(cell, Sequential):
        out, used = [], 0
        for i, layer in enumerate(cell.layers):
            mine, n = _names(layer, names[used:], f"{prefix}layers[{i}].")
            out += mine
            used += n
        return out, used
    n = len(jax.tree_util.tree_leaves(jax.eval_shape(cell.initial_state)))
    flag = [f"{prefix}started"] if initial_state_parameters(cell) else []
    return names[:n] + flag, n
