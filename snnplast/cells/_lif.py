"""Leaky integrate-and-fire neurons."""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._cell import Cell
from ..surrogates import FastSigmoid, Surrogate
from ._init import check_positive_int, check_unit_interval, off_diagonal, uniform_fan_in


def _reset(v_leak, z_prev, threshold, mode, detach):
    z = jax.lax.stop_gradient(z_prev) if detach else z_prev
    if mode == "subtract":
        return v_leak - threshold * z
    return v_leak * (1.0 - z)


class LIF(Cell):
    r"""A layer of leaky integrate-and-fire neurons (optionally recurrent).

    State ``(v, z)``: membrane potentials and the spikes of the previous step, both ``[n]``.

    $$I_t = W_{in} x_t + (W_{rec} \odot M) z_{t-1}, \qquad M = 1 - \mathrm{I}$$
    $$v_t = \alpha v_{t-1} + I_t - \vartheta z_{t-1} \quad\text{(reset="subtract")}$$
    $$v_t = \alpha v_{t-1}(1 - z_{t-1}) + I_t \quad\text{(reset="zero")}$$
    $$z_t = H(v_t - \vartheta)$$

    with the surrogate's pseudo-derivative $\psi_t = H'(v_t - \vartheta)$ in place of $H'$. The reset
    uses the spike of the previous step, so the surrogate is always evaluated at the pre-reset
    potential. With ``detach_reset=True`` (default) the reset term carries no gradient.

    Jacobian structure of one step (what the trace engine infers):

    - $\partial v_t/\partial v_{t-1} = \alpha\,\mathrm{I}$: diagonal and constant in time (subtract
      reset); $\alpha(1-z_{t-1})$, diagonal and time-varying, for the zero reset.
    - $\partial v_t/\partial z_{t-1} = W_{rec}\odot M$ (dense) for a recurrent layer, plus
      $-\vartheta\,\mathrm{I}$ when the reset is not detached; zero otherwise.
    - $\partial z_t / \cdot = \psi_t \odot \partial v_t / \cdot$: the spike is a function of the same
      step's potential.
    - $\partial v_t/\partial W_{in}[j,i] = \delta_{jk} x_{t,i}$: factored (post factor 1, pre
      factor $x_t$); likewise $W_{rec}$ with $z_{t-1}$, times the mask.

    **Arguments:**

    - `n_in`, `n`: input and layer sizes.
    - `key`: a PRNG key for the weights.
    - `alpha`: membrane decay per step in [0, 1) (``exp(-dt/tau)``).
    - `threshold`: firing threshold $\vartheta$ > 0.
    - `recurrent`: add the recurrent matrix $W_{rec}$ (its diagonal is masked).
    - `reset`: ``"subtract"`` or ``"zero"``.
    - `detach_reset`: stop the gradient through the reset term.
    - `surrogate`: a :class:`snnplast.surrogates.Surrogate`.
    - `gain`: scale of the uniform fan-in initialisation.
    """

    w_in: Float[Array, "n n_in"]
    w_rec: Float[Array, "n n"] | None
    alpha: float = eqx.field(static=True)
    threshold: float = eqx.field(static=True)
    reset: str = eqx.field(static=True)
    detach_reset: bool = eqx.field(static=True)
    surrogate: Surrogate = eqx.field(static=True)

    def __init__(
        self,
        n_in: int,
        n: int,
        *,
        key: PRNGKeyArray,
        alpha: float = 0.9,
        threshold: float = 1.0,
        recurrent: bool = False,
        reset: Literal["subtract", "zero"] = "subtract",
        detach_reset: bool = True,
        surrogate: Surrogate = FastSigmoid(),
        gain: float = 1.0,
    ):
        check_positive_int("n_in", n_in)
        check_positive_int("n", n)
        if reset not in ("subtract", "zero"):
            raise ValueError(f"reset must be 'subtract' or 'zero', got {reset!r}")
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold!r}")
        k_in, k_rec = jax.random.split(key)
        self.w_in = uniform_fan_in(k_in, (n, n_in), n_in, gain)
        self.w_rec = uniform_fan_in(k_rec, (n, n), n, gain) if recurrent else None
        self.alpha = check_unit_interval("alpha", alpha)
        self.threshold = float(threshold)
        self.reset = reset
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
        return (zeros, zeros)

    def __call__(self, state, x):
        v, z = state
        current = self.w_in @ x
        if self.w_rec is not None:
            current = current + off_diagonal(self.w_rec) @ z
        v = _reset(self.alpha * v, z, self.threshold, self.reset, self.detach_reset) + current
        z_new = self.surrogate(v - self.threshold)
        return (v, z_new), z_new
