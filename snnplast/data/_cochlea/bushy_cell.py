r"""The bushy cell: stochastic auditory-nerve inputs converging on a leaky integrate-and-fire cell.

Each channel's bushy cell listens to $n$ auditory-nerve fibres. A fibre that is ready spikes in a
sample with the hair cell's probability $p_t$; after a spike it is dead for
$R = \lceil \tau_{ref} f \rceil$ samples ($f$ the sampling rate). The fibres of a channel share
$p_t$, so only how many are ready matters: with $s_t$ the number of input spikes in sample $t$,

$$n^{ready}_t = n - \sum_{j=1}^{R-1} s_{t-j}, \qquad
s_t \sim \mathrm{Binomial}(n^{ready}_t, \min(p_t, 1)),$$

which is exactly the law of $n$ independent Bernoulli fibres with dead time, at the cost of one
draw per channel and sample instead of $n$. The synaptic current and the membrane follow

$$I_t = e^{-\Delta t/\tau_{syn}}\,I_{t-1} + s_t,\qquad
v_t = \min\!\big(1,\ e^{-\Delta t/\tau_m}\,v_{t-1} + \tfrac{W}{n}\,\Delta t\,I_t\big),$$

and the cell fires at $t$ when $v_t$ reaches 1; then $v$ is held at 0, without integrating, for
the $R$ samples $t+1, \dots, t+R$ (the current $I$ keeps decaying and summing meanwhile). These are
the update order and conventions of Lauscher's bushy cell, whose last sample can never fire.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ..._errors import ValidationError, ValidationTypeError


class BushyCellState(NamedTuple):
    """State of the fibres (recent input counts) and of the integrate-and-fire cell."""

    recent: Int[Array, "ring ..."]  # input spikes of the last R-1 samples, a ring buffer
    dead: Int[Array, "*batch"]  # fibres now refractory: the sum of `recent`
    current: Float[Array, "*batch"]
    v: Float[Array, "*batch"]
    refractory: Int[Array, "*batch"]  # samples the cell stays silent, counting down
    t: Int[Array, ""]


def binomial_by_inversion(
    n: Int[Array, "*batch"], p: Float[Array, "*batch"], u: Float[Array, "*batch"]
) -> Int[Array, "*batch"]:
    r"""Draw $k \sim \mathrm{Binomial}(n, p)$ from one uniform $u$ per element by inversion.

    $k = \#\{j < n : F(j) < u\}$, the number of CDF values below $u$, with the probabilities
    walked up as $P(j+1) = P(j)\,\frac{n-j}{j+1}\,\frac{p}{1-p}$ from $P(0) = (1-p)^n$. The walk
    stops once no element can still count, so it costs about the largest draw in the batch, not
    $n$ steps. For $p > 1/2$ the failures are drawn instead, which keeps $P(0) \ge 2^{-n}$ clear
    of underflow.

    **Arguments:**

    - `n`: trials (int32, >= 0).
    - `p`: success probabilities in [0, 1].
    - `u`: uniforms in [0, 1).

    **Returns:** int32 draws, same shape.
    """
    flip = p > 0.5
    q = jnp.where(flip, 1.0 - p, p)
    n_f = n.astype(q.dtype)
    odds = q / (1.0 - q)
    pmf = jnp.exp(n_f * jnp.log1p(-q))
    # Every element walks the same j, so (j + 1) is a scalar and the walk needs no selects: an
    # element whose CDF has passed u simply stops counting.
    counting = (u > pmf) & (n > 0)
    k = counting.astype(n.dtype)

    def cond(carry):
        return jnp.any(carry[4])

    def body(carry):
        j, k, pmf, cdf, _ = carry
        pmf = pmf * (n_f - j) * odds * (1.0 / (j + 1.0))
        cdf = cdf + pmf
        counting = (u > cdf) & (n_f > j + 1.0)
        return j + 1.0, k + counting.astype(k.dtype), pmf, cdf, counting

    init = (jnp.zeros((), q.dtype), k, pmf, pmf, counting)
    k = jax.lax.while_loop(cond, body, init)[1]
    return jnp.where(flip, n - k, k)


@dataclasses.dataclass(frozen=True)
class BushyCell:
    r"""Parameters of the bushy cell (defaults: Lauscher's).

    **Arguments:**

    - `n_inputs`: converging auditory-nerve fibres $n$.
    - `tau_mem`: membrane time constant $\tau_m$ (s).
    - `tau_syn`: synaptic time constant $\tau_{syn}$ (s).
    - `tau_refrac`: dead time $\tau_{ref}$ of fibres and cell (s).
    - `weight`: total synaptic weight $W$ (shared by the $n$ fibres).
    """

    n_inputs: int = 40
    tau_mem: float = 1e-3
    tau_syn: float = 5e-4
    tau_refrac: float = 1e-3
    weight: float = 13e3

    def __post_init__(self):
        if isinstance(self.n_inputs, bool) or not isinstance(self.n_inputs, int):
            raise ValidationTypeError(f"n_inputs must be a positive int, got {self.n_inputs!r}")
        if self.n_inputs < 1:
            raise ValidationError(f"n_inputs must be a positive int, got {self.n_inputs}")

    def dead_samples(self, rate: float) -> int:
        """$R$: samples from a spike until the next one is allowed (at least 1)."""
        return max(1, math.ceil(self.tau_refrac * float(rate)))

    def init(self, shape: tuple[int, ...], rate: float) -> BushyCellState:
        """Silent fibres (all ready) and a cell at rest, for channels of `shape`."""
        ring = max(1, self.dead_samples(rate) - 1)
        zeros_i = jnp.zeros(shape, jnp.int32)
        zeros_f = jnp.zeros(shape, jnp.float32)
        recent = jnp.zeros((ring, *shape), jnp.int32)
        return BushyCellState(recent, zeros_i, zeros_f, zeros_f, zeros_i, jnp.zeros((), jnp.int32))

    def step(
        self,
        state: BushyCellState,
        p: Float[Array, "*batch"],
        u: Float[Array, "*batch"],
        rate: float,
    ) -> tuple[BushyCellState, Bool[Array, "*batch"]]:
        """One sample.

        **Arguments:**

        - `state`: the current :class:`BushyCellState`.
        - `p`: release probability $p_t$ of each channel's fibres.
        - `u`: one uniform in [0, 1) per channel, the randomness of this sample.
        - `rate`: sampling rate in Hz.

        **Returns:** ``(next_state, fired)``, where `fired` says which cells spiked at the
        *previous* sample $t-1$ (a spike is known once $v_{t-1}$ has been seen to reach 1).
        """
        dt = 1.0 / float(rate)
        dead_for = self.dead_samples(rate)
        recent, dead, current, v, refractory, t = state

        ready = self.n_inputs - dead
        s = binomial_by_inversion(ready, jnp.clip(p, 0.0, 1.0), u)
        if dead_for > 1:
            slot = t % recent.shape[0]
            dead = dead + s - recent[slot]
            recent = recent.at[slot].set(s)

        silent = refractory > 0
        fired = ~silent & (v >= 1.0)
        v = jnp.where(silent | fired, 0.0, v * math.exp(-dt / self.tau_mem))
        refractory = jnp.where(fired, dead_for, refractory)
        current = current * math.exp(-dt / self.tau_syn) + s.astype(current.dtype)
        drive = current * (self.weight / self.n_inputs * dt)
        v = jnp.minimum(jnp.where(refractory > 0, v, v + drive), 1.0)
        next_state = BushyCellState(recent, dead, current, v, jnp.maximum(refractory - 1, 0), t + 1)
        return next_state, fired
