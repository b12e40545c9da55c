"""Adaptive leaky integrate-and-fire neurons (Bellec et al. 2018/2020)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._cell import Cell
from ..surrogates import FastSigmoid, Surrogate
from ._init import check_positive_int, check_unit_interval, off_diagonal, uniform_fan_in


class ALIF(Cell):
    r"""A layer of LIF neurons with an adaptive threshold (optionally recurrent).

    State ``(v, a, z)``: potential, threshold adaptation and the previous spikes, each ``[n]``.

    $$I_t = W_{in} x_t + (W_{rec}\odot M) z_{t-1}$$
    $$a_t = \rho\, a_{t-1} + (1-\rho)\, z_{t-1}$$
    $$v_t = \alpha v_{t-1} + I_t - \vartheta z_{t-1}$$
    $$z_t = H(v_t - \vartheta - \beta a_t)$$

    The reset term is detached by default (``detach_reset``); the adaptation path is not, so the
    eligibility trace of ALIF couples ``v`` and ``a``.

    Jacobian structure of one step:

    - $\partial v_t/\partial v_{t-1} = \alpha\,\mathrm{I}$ and
      $\partial a_t/\partial a_{t-1} = \rho\,\mathrm{I}$: constant diagonals;
      $\partial a_t/\partial z_{t-1} = (1-\rho)\,\mathrm{I}$: constant diagonal.
    - $\partial z_t/\partial(v_t, a_t) = \psi_t\,(1, -\beta)$: diagonal, time-varying; so through
      $z_{t-1}$ the state couples to itself neuron by neuron (a 2x2 block per neuron) and, for a
      recurrent layer, densely through $W_{rec}$.
    - $\partial v_t/\partial W_{in}$: factored ($1 \otimes x_t$). The trace of $a$ with respect to
      $W_{in}$ is not factored: it carries $\psi$ of earlier steps.
    """

    w_in: Float[Array, "n n_in"]
    w_rec: Float[Array, "n n"] | None
    alpha: float = eqx.field(static=True)
    rho: float = eqx.field(static=True)
    beta: float = eqx.field(static=True)
    threshold: float = eqx.field(static=True)
    detach_reset: bool = eqx.field(static=True)
    surrogate: Surrogate = eqx.field(static=True)

    def __init__(
        self,
        n_in: int,
        n: int,
        *,
        key: PRNGKeyArray,
        alpha: float = 0.9,
        rho: float = 0.98,
        beta: float = 1.8,
        threshold: float = 1.0,
        recurrent: bool = False,
        detach_reset: bool = True,
        surrogate: Surrogate = FastSigmoid(),
        gain: float = 1.0,
    ):
        check_positive_int("n_in", n_in)
        check_positive_int("n", n)
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold!r}")
        if beta < 0:
            raise ValueError(f"beta must be non-negative, got {beta!r}")
        k_in, k_rec = jax.random.split(key)
        self.w_in = uniform_fan_in(k_in, (n, n_in), n_in, gain)
        self.w_rec = uniform_fan_in(k_rec, (n, n), n, gain) if recurrent else None
        self.alpha = check_unit_interval("alpha", alpha)
        self.rho = check_unit_interval("rho", rho)
        self.beta = float(beta)
        self.threshold = float(threshold)
        self.detach_reset = bool(detach_reset)
        self.surrogate = surrogate

    @property
    def n(self) -> int:
        return self.w_in.shape[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.w_in.shape[1],)

    def initial_state(self):
        zeros = jnp.zeros(self.n, self.w_in.dtype)
        return (zeros, zeros, zeros)

    def __call__(self, state, x):
        v, a, z = state
        current = self.w_in @ x
        if self.w_rec is not None:
            current = current + off_diagonal(self.w_rec) @ z
        z_reset = jax.lax.stop_gradient(z) if self.detach_reset else z
        a = self.rho * a + (1.0 - self.rho) * z
        v = self.alpha * v + current - self.threshold * z_reset
        z_new = self.surrogate(v - self.threshold - self.beta * a)
        return (v, a, z_new), z_new
