"""Leaky-integrator readout."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._cell import Cell
from ._init import check_positive_int, check_unit_interval, uniform_fan_in


class LI(Cell):
    r"""Leaky-integrator (non-spiking) readout.

    State ``v`` ``[n]``; output ``v_t``.

    $$v_t = \kappa v_{t-1} + W x_t + b$$

    Jacobian structure: $\partial v_t/\partial v_{t-1} = \kappa\,\mathrm{I}$ (constant diagonal);
    $\partial v_t/\partial W = 1\otimes x_t$ (factored); $\partial v_t / \partial b = \mathrm{I}$.
    """

    weight: Float[Array, "n n_in"]
    bias: Float[Array, " n"]
    kappa: float = eqx.field(static=True)

    def __init__(self, n_in: int, n: int, *, key: PRNGKeyArray, kappa: float = 0.9,
                 gain: float = 1.0):
        check_positive_int("n_in", n_in)
        check_positive_int("n", n)
        self.weight = uniform_fan_in(key, (n, n_in), n_in, gain)
        self.bias = jnp.zeros(n, self.weight.dtype)
        self.kappa = check_unit_interval("kappa", kappa)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.weight.shape[1],)

    def initial_state(self):
        return jnp.zeros(self.weight.shape[0], self.weight.dtype)

    def __call__(self, state, x):
        v = self.kappa * state + self.weight @ x + self.bias
        return v, v
