"""Elman recurrent network."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._cell import Cell
from ._init import check_positive_int, uniform_fan_in


class RNN(Cell):
    r"""Elman RNN: $h_t = \tanh(W_{in} x_t + W_{rec} h_{t-1} + b)$; output $h_t$.

    Jacobian structure: $\partial h_t/\partial h_{t-1} = \mathrm{diag}(1-h_t^2) W_{rec}$ (dense);
    $\partial h_t/\partial W_{in} = (1-h_t^2)\otimes x_t$ (factored, time-varying post factor);
    $\partial h_t/\partial b = \mathrm{diag}(1-h_t^2)$.
    """

    w_in: Float[Array, "n n_in"]
    w_rec: Float[Array, "n n"]
    bias: Float[Array, " n"]

    def __init__(self, n_in: int, n: int, *, key: PRNGKeyArray):
        check_positive_int("n_in", n_in)
        check_positive_int("n", n)
        k1, k2 = jax.random.split(key)
        self.w_in = uniform_fan_in(k1, (n, n_in), n)
        self.w_rec = uniform_fan_in(k2, (n, n), n)
        self.bias = jnp.zeros(n, self.w_in.dtype)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.w_in.shape[1],)

    def initial_state(self):
        return jnp.zeros(self.w_rec.shape[0], self.w_rec.dtype)

    def __call__(self, state, x):
        h = jnp.tanh(self.w_in @ x + self.w_rec @ state + self.bias)
        return h, h
