"""Columnar recurrent network (Javed et al. 2023)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .._cell import Cell
from ._init import check_positive_int, check_unit_interval, uniform_fan_in


class Columnar(Cell):
    r"""A columnar network: ``n`` columns, each with its own feature extractor and scalar state.

    Column $i$ computes features from the input and its own state only, then updates its scalar
    state from the features of its own column and, through sparse *lateral* connections, of others:

    $$f_{i,t} = \mathrm{relu}(A_i [x_t; h_{i,t-1}] + a_i) \in \mathbb{R}^k$$
    $$h_{i,t} = \gamma h_{i,t-1} + \tanh\Big(\sum_j M_{ij}\, U_{ij}^\top f_{j,t} + r_i h_{i,t-1} + b_i\Big)$$

    $M_{ii} = 1$; each off-diagonal $M_{ij}$ is 1 with probability ``lateral_density`` (0 = no
    lateral connections, 1 = fully connected). State and output: ``h`` ``[n]``.

    Jacobian structure: with no lateral connections $\partial h_t/\partial h_{t-1}$ is diagonal and
    the parameters of column $i$ ($A_i, a_i, U_{ii}, r_i, b_i$) influence only $h_i$, so each
    parameter's trace is a scalar (Master-User is exact). Lateral connections add off-diagonal
    entries $M_{ij} \ne 0$ to $\partial h_t/\partial h_{t-1}$.
    """

    a_w: Float[Array, "n k n_in1"]
    a_b: Float[Array, "n k"]
    u: Float[Array, "n n k"]
    r: Float[Array, " n"]
    b: Float[Array, " n"]
    mask: Bool[Array, "n n"]
    decay: float = eqx.field(static=True)

    def __init__(
        self,
        n_in: int,
        n_columns: int,
        *,
        key: PRNGKeyArray,
        n_features: int = 8,
        lateral_density: float = 0.0,
        decay: float = 1.0,
    ):
        check_positive_int("n_in", n_in)
        check_positive_int("n_columns", n_columns)
        check_positive_int("n_features", n_features)
        density = check_unit_interval("lateral_density", lateral_density, closed_right=True)
        k1, k2, k3, k4 = jax.random.split(key, 4)
        n, k = n_columns, n_features
        self.a_w = uniform_fan_in(k1, (n, k, n_in + 1), n_in + 1)
        self.a_b = jnp.zeros((n, k), self.a_w.dtype)
        self.u = uniform_fan_in(k2, (n, n, k), k)
        self.r = uniform_fan_in(k3, (n,), 1)
        self.b = jnp.zeros(n, self.a_w.dtype)
        lateral = np.asarray(jax.random.uniform(k4, (n, n))) < density
        self.mask = jnp.asarray(lateral | np.eye(n, dtype=bool))
        self.decay = check_unit_interval("decay", decay, closed_right=True)

    @property
    def n(self) -> int:
        return self.r.shape[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.a_w.shape[2] - 1,)

    def initial_state(self):
        return jnp.zeros(self.n, self.r.dtype)

    def __call__(self, state, x):
        h = state
        inp = jnp.concatenate([jnp.broadcast_to(x, (self.n, x.shape[0])), h[:, None]], axis=1)
        f = jax.nn.relu(jnp.einsum("nki,ni->nk", self.a_w, inp) + self.a_b)
        u = jnp.where(self.mask[:, :, None], self.u, 0.0)
        pre = jnp.einsum("ijk,jk->i", u, f) + self.r * h + self.b
        h = self.decay * h + jnp.tanh(pre)
        return h, h
