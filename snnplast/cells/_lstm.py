"""Long short-term memory."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._cell import Cell
from ._init import check_positive_int, uniform_fan_in


class LSTM(Cell):
    r"""LSTM cell; state ``(h, c)``, output ``h``.

    $$[i, f, g, o] = W_{in} x_t + W_{rec} h_{t-1} + b$$
    $$c_t = \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh(g), \qquad h_t = \sigma(o)\odot\tanh(c_t)$$

    Jacobian structure: $\partial c_t/\partial c_{t-1} = \mathrm{diag}(\sigma(f))$ (diagonal,
    time-varying); $\partial (h_t, c_t)/\partial h_{t-1}$ dense through $W_{rec}$. Unit $j$
    depends on the four rows $j, n+j, 2n+j, 3n+j$ of $W_{in}$ (one per gate); the gates arrive
    through one ``split`` of a stacked matrix; the engine's view refinement sees the stacked
    ``4n`` axis as ``(4, n)``, so this immediate influence is stored per unit and gate
    (``[n, 4, n_in]``, one tie between unit ``j`` and row ``(g, j)``).
    """

    w_in: Float[Array, "4n n_in"]
    w_rec: Float[Array, "4n n"]
    bias: Float[Array, " 4n"]

    def __init__(self, n_in: int, n: int, *, key: PRNGKeyArray, forget_bias: float = 1.0):
        check_positive_int("n_in", n_in)
        check_positive_int("n", n)
        k1, k2 = jax.random.split(key)
        self.w_in = uniform_fan_in(k1, (4 * n, n_in), n)
        self.w_rec = uniform_fan_in(k2, (4 * n, n), n)
        self.bias = jnp.zeros(4 * n, self.w_in.dtype).at[n : 2 * n].set(forget_bias)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.w_in.shape[1],)

    def initial_state(self):
        n = self.w_rec.shape[1]
        return (jnp.zeros(n, self.w_rec.dtype), jnp.zeros(n, self.w_rec.dtype))

    def __call__(self, state, x):
        h, c = state
        i, f, g, o = jnp.split(self.w_in @ x + self.w_rec @ h + self.bias, 4)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h
