"""The Cell protocol: one time step of one sample."""

from __future__ import annotations

import abc
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.extend.core import Literal
from jaxtyping import Array, PyTree


class Cell(eqx.Module):
    """Abstract base of every neuron model.

    A cell describes **one time step of one sample**. snnplast vmaps it over the batch and scans it
    over time; a cell never sees either axis.

    Trainable parameters are the cell's inexact array leaves (``eqx.is_inexact_array``). Anything
    that must stay fixed is a static field, an integer/boolean array, or is wrapped in
    ``jax.lax.stop_gradient`` inside ``__call__``.

    Concrete cells implement two methods:

    - ``initial_state(self) -> PyTree[Array]``: the state of one sample before the first step.
    - ``__call__(self, state, x) -> (new_state, output)``: one step.
    """

    @abc.abstractmethod
    def initial_state(self) -> PyTree[Array]:
        """The (unbatched) state before the first time step."""

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """Shape of one step's input, where the cell knows it (``None`` otherwise)."""
        return None

    @abc.abstractmethod
    def __call__(self, state: PyTree[Array], x: Array) -> tuple[PyTree[Array], Array]:
        """Advance one time step: ``(state_{t-1}, x_t) -> (state_t, output_t)``."""


class Sequential(Cell):
    """Layers applied one after another within a time step; itself a Cell.

    The state is the tuple of the layers' states; the output of layer ``l`` at step ``t`` is the
    input of layer ``l + 1`` at the same step.

    **Arguments:**

    - `layers`: a non-empty sequence of cells.
    """

    layers: tuple[Cell, ...]

    def __init__(self, layers: Sequence[Cell]):
        layers = tuple(layers)
        if not layers:
            raise ValueError("Sequential needs at least one layer, got an empty sequence")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Cell):
                raise TypeError(
                    f"Sequential layer {i} must be a snnplast.Cell, got {type(layer).__name__}"
                )
        self.layers = layers

    def initial_state(self):
        return tuple(layer.initial_state() for layer in self.layers)

    def __call__(self, state, x):
        new_state = []
        for layer, s in zip(self.layers, state):
            s, x = layer(s, x)
            new_state.append(s)
        return tuple(new_state), x

    @property
    def input_shape(self):
        return self.layers[0].input_shape

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]


def initial_state_parameters(cell: Cell) -> list[str]:
    """The trainable parameters that `cell`'s initial state depends on (a learned ``h0``).

    Online methods start their traces at ``d s_0 / d theta``, which is zero unless this list
    is not empty (they then compute the start inside the first step:
    :class:`snnplast.online.FixedStart`). ``stop_gradient`` cuts the dependence. Not for a
    :class:`Sequential` as a whole: ask each layer.

    **Returns:** the parameters' paths in the cell (``"h0"``, ``"layer.bias"``), in leaf order.
    """
    params, static = eqx.partition(cell, eqx.is_inexact_array)
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    treedef = jax.tree_util.tree_structure(params)

    def initial(flat):
        return eqx.combine(jax.tree_util.tree_unflatten(treedef, flat), static).initial_state()

    reached = _reaching(jax.make_jaxpr(initial)([leaf for _, leaf in leaves]).jaxpr)
    return [jax.tree_util.keystr(leaves[k][0]).lstrip(".") for k in sorted(reached)]


def _reaching(jaxpr) -> set[int]:
    """The inputs of `jaxpr` that some floating-point output depends on (through anything but
    ``stop_gradient``)."""
    found = set()
    for k, invar in enumerate(jaxpr.invars):
        dep = {invar}
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "stop_gradient":
                continue
            if any(not isinstance(v, Literal) and v in dep for v in eqn.invars):
                dep.update(eqn.outvars)
        if any(not isinstance(v, Literal) and v in dep
               and jnp.issubdtype(v.aval.dtype, jnp.inexact) for v in jaxpr.outvars):
            found.add(k)
    return found
