"""Gated recurrent unit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._cell import Cell
from ._init import check_positive_int, uniform_fan_in


class GRU(Cell):
    r"""GRU cell (Cho et al. 2014, in the PyTorch arrangement); state and output ``h``.

    $$r = \sigma(W^r_{in} x + W^r_{rec} h + b^r), \quad u = \sigma(W^u_{in} x + W^u_{rec} h + b^u)$$
    $$\tilde h = \tanh(W^n_{in} x + b^n_{in} + r\odot(W^n_{rec} h + b^n_{rec}))$$
    $$h_t = (1-u)\odot\tilde h + u\odot h_{t-1}$$

    Jacobian structure: $\partial h_t/\partial h_{t-1}$ dense (through all three recurrent blocks)
    plus the diagonal $\mathrm{diag}(u)$. As for :class:`LSTM`, the gates come from one ``split``
    of stacked matrices, which view refinement sees as ``(3, n)``: the weights' immediate
    influence is stored per unit and gate (``[n, 3, n_in]``).
    """

    w_in: Float[Array, "3n n_in"]
    w_rec: Float[Array, "3n n"]
    b_in: Float[Array, " 3n"]
    b_rec: Float[Array, " 3n"]

    def __init__(self, n_in: int, n: int, *, key: PRNGKeyArray):
        check_positive_int("n_in", n_in)
        check_positive_int("n", n)
        k1, k2 = jax.random.split(key)
        self.w_in = uniform_fan_in(k1, (3 * n, n_in), n)
        self.w_rec = uniform_fan_in(k2, (3 * n, n), n)
        self.b_in = jnp.zeros(3 * n, self.w_in.dtype)
        self.b_rec = jnp.zeros(3 * n, self.w_in.dtype)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.w_in.shape[1],)

    def initial_state(self):
        return jnp.zeros(self.w_rec.shape[1], self.w_rec.dtype)

    def __call__(self, state, x):
        h = state
        xr, xu, xn = jnp.split(self.w_in @ x + self.b_in, 3)
        hr, hu, hn = jnp.split(self.w_rec @ h + self.b_rec, 3)
        r = jax.nn.sigmoid(xr + hr)
        u = jax.nn.sigmoid(xu + hu)
        n = jnp.tanh(xn + r * hn)
        h = (1.0 - u) * n + u * h
        return h, h
