"""Causal linear-attention transformer block as a recurrent cell."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._cell import Cell
from ._init import check_positive_int, check_unit_interval, uniform_fan_in


def _feature(u):
    # elu(u) + 1 > 0 keeps the normaliser positive (Katharopoulos et al. 2020).
    return jax.nn.elu(u) + 1.0


def _layer_norm(u, gain, bias, eps=1e-5):
    mean = jnp.mean(u)
    var = jnp.mean((u - mean) ** 2)
    return (u - mean) * jax.lax.rsqrt(var + eps) * gain + bias


class LinearAttention(Cell):
    r"""A pre-norm transformer block whose attention is causal linear attention (fast weights).

    With $H$ heads of size $d$ ($d_{model} = H d$), per head $h$ and step $t$:

    $$e_t = W_e x_t, \quad u_t = \mathrm{LN}_1(e_t), \quad q, k, v = W_q u_t, W_k u_t, W_v u_t$$
    $$S^h_t = \gamma S^h_{t-1} + \phi(k^h_t)\, {v^h_t}^\top, \qquad
      s^h_t = \gamma s^h_{t-1} + \phi(k^h_t)$$
    $$a^h_t = \frac{{S^h_t}^\top \phi(q^h_t)}{\phi(q^h_t)^\top s^h_t + \epsilon}, \qquad
      y_t = e_t + W_o a_t, \qquad \mathrm{out}_t = y_t + W_2\,\mathrm{gelu}(W_1 \mathrm{LN}_2(y_t))$$

    with $\phi = \mathrm{elu} + 1$. The state is ``(S, s)`` of shapes ``[H, d, d]`` and ``[H, d]``:
    each head's fast-weight matrix and normaliser, so the block is a true recurrent cell.

    Jacobian structure: $\partial S_t/\partial S_{t-1} = \gamma\,\mathrm{I}$ and
    $\partial s_t/\partial s_{t-1} = \gamma\,\mathrm{I}$ (constant diagonal); the state never
    depends on the previous state through a nonlinearity. The output depends on each head's state
    only through that head (block-diagonal per head before $W_o$).
    """

    w_embed: Float[Array, "dm n_in"]
    w_q: Float[Array, "dm dm"]
    w_k: Float[Array, "dm dm"]
    w_v: Float[Array, "dm dm"]
    w_o: Float[Array, "dm dm"]
    w_1: Float[Array, "dh dm"]
    w_2: Float[Array, "dm dh"]
    ln1: tuple[Array, Array]
    ln2: tuple[Array, Array]
    n_heads: int = eqx.field(static=True)
    decay: float = eqx.field(static=True)
    eps: float = eqx.field(static=True)

    def __init__(
        self,
        n_in: int,
        d_model: int,
        n_heads: int,
        *,
        key: PRNGKeyArray,
        mlp_ratio: int = 2,
        decay: float = 1.0,
        eps: float = 1e-6,
    ):
        check_positive_int("n_in", n_in)
        check_positive_int("d_model", d_model)
        check_positive_int("n_heads", n_heads)
        check_positive_int("mlp_ratio", mlp_ratio)
        if d_model % n_heads:
            raise ValueError(
                f"d_model must be divisible by n_heads, got d_model={d_model}, n_heads={n_heads}"
            )
        keys = jax.random.split(key, 7)
        dh = mlp_ratio * d_model
        self.w_embed = uniform_fan_in(keys[0], (d_model, n_in), n_in)
        self.w_q = uniform_fan_in(keys[1], (d_model, d_model), d_model)
        self.w_k = uniform_fan_in(keys[2], (d_model, d_model), d_model)
        self.w_v = uniform_fan_in(keys[3], (d_model, d_model), d_model)
        self.w_o = uniform_fan_in(keys[4], (d_model, d_model), d_model)
        self.w_1 = uniform_fan_in(keys[5], (dh, d_model), d_model)
        self.w_2 = uniform_fan_in(keys[6], (d_model, dh), dh)
        dtype = self.w_embed.dtype  # gains and biases too, also where x64 is on
        self.ln1 = (jnp.ones(d_model, dtype), jnp.zeros(d_model, dtype))
        self.ln2 = (jnp.ones(d_model, dtype), jnp.zeros(d_model, dtype))
        self.n_heads = n_heads
        self.decay = check_unit_interval("decay", decay, closed_right=True)
        self.eps = float(eps)

    @property
    def head_size(self) -> int:
        return self.w_q.shape[0] // self.n_heads

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.w_embed.shape[1],)

    def initial_state(self):
        h, d = self.n_heads, self.head_size
        dtype = self.w_q.dtype
        return (jnp.zeros((h, d, d), dtype), jnp.zeros((h, d), dtype))

    def __call__(self, state, x):
        big_s, small_s = state
        h, d = self.n_heads, self.head_size
        e = self.w_embed @ x
        u = _layer_norm(e, *self.ln1)
        q = _feature((self.w_q @ u).reshape(h, d))
        k = _feature((self.w_k @ u).reshape(h, d))
        v = (self.w_v @ u).reshape(h, d)
        big_s = self.decay * big_s + k[:, :, None] * v[:, None, :]
        small_s = self.decay * small_s + k
        num = jnp.einsum("hd,hde->he", q, big_s)
        den = jnp.einsum("hd,hd->h", q, small_s)[:, None] + self.eps
        y = e + self.w_o @ (num / den).reshape(h * d)
        out = y + self.w_2 @ jax.nn.gelu(self.w_1 @ _layer_norm(y, *self.ln2))
        return (big_s, small_s), out
