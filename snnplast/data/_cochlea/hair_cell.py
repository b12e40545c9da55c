r"""The inner hair cell: Meddis's transmitter-pool model, all channels stepped at once.

A hair cell turns the membrane velocity $u_t$ of its place into the probability that an attached
auditory-nerve fibre releases a spike. Transmitter moves between a free pool $q$, the synaptic
cleft $c$ and a reprocessing store $w$ (Meddis 1986, JASA 79(3):702; Meddis 1988, JASA
83(3):1056); the membrane's permeability $k$ rises with the stimulus:

$$k_t = g\,\frac{u_t + A}{u_t + A + B}\ \text{ if } u_t + A > 0 \text{ else } 0$$
$$q_{t+1} = \big[q_t + \Delta t\,\big(y\,(M - q_t)\,[q_t < M] + x\,w_t - k_t q_t\big)\big]_+$$
$$c_{t+1} = \big[c_t + \Delta t\,\big(k_t q_t - (l + r)\,c_t\big)\big]_+$$
$$w_{t+1} = \big[w_t + \Delta t\,\big(r\,c_t - x\,w_t\big)\big]_+$$
$$p_t = h\,\Delta t\,c_{t+1}$$

(forward Euler at the membrane's output rate, $[\cdot]_+ = \max(\cdot, 0)$; every right-hand side
uses the old state). The recursion starts at its resting point, the fixed point for $u = 0$:
$k_0 = gA/(A+B)$, $c_0 = M y k_0 / (l k_0 + y(l+r))$, $q_0 = c_0 (l+r)/k_0$, $w_0 = c_0 r / x$.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float


class HairCellState(NamedTuple):
    """Transmitter in the free pool `q`, the cleft `c` and the reprocessing store `w`."""

    q: Float[Array, "*batch"]
    c: Float[Array, "*batch"]
    w: Float[Array, "*batch"]


@dataclasses.dataclass(frozen=True)
class HairCell:
    r"""Parameters of the Meddis hair cell (defaults: Lauscher's, rates in 1/s).

    **Arguments:**

    - `y`: replenishment rate $y$ of the free pool from the factory.
    - `g`: maximal permeability $g$.
    - `l`: loss rate $l$ from the cleft.
    - `r`: reuptake rate $r$ from the cleft.
    - `x`: reprocessing rate $x$ back to the free pool.
    - `a`: permeability offset $A$.
    - `b`: permeability saturation $B$.
    - `h`: firing-rate scale $h$.
    - `m`: capacity $M$ of the free pool.
    """

    y: float = 5.05
    g: float = 2000.0
    l: float = 2500.0  # Meddis's name for the loss rate
    r: float = 6580.0
    x: float = 66.3
    a: float = 5.0
    b: float = 300.0
    h: float = 50000.0
    m: float = 1.0

    def lowest_stable_rate(self) -> float:
        r"""The step rate (Hz) below which the Euler recursion is unstable: $(l + r)/2$.

        The cleft obeys $c_{t+1} = (1 - (l + r)\Delta t)\,c_t + \dots$; once $(l+r)\Delta t > 2$
        (Lauscher's rates: a step rate under 4540 Hz, audio under 9080 Hz) every perturbation
        grows, and the cochlea's output is noise.
        """
        return (self.l + self.r) / 2.0

    def rest(self, shape: tuple[int, ...], dtype=jnp.float32) -> HairCellState:
        """The resting state (the fixed point with no stimulus), broadcast to `shape`."""
        k0 = self.g * self.a / (self.a + self.b)
        c0 = self.m * self.y * k0 / (self.l * k0 + self.y * (self.l + self.r))
        q0 = c0 * (self.l + self.r) / k0
        w0 = c0 * self.r / self.x
        return HairCellState(*(jnp.full(shape, v, dtype=dtype) for v in (q0, c0, w0)))

    def step(
        self, state: HairCellState, velocity: Float[Array, "*batch"], rate: float
    ) -> tuple[HairCellState, Float[Array, "*batch"]]:
        """One Euler step at `rate` Hz.

        **Arguments:**

        - `state`: the current :class:`HairCellState`.
        - `velocity`: membrane velocity $u_t$, same shape as the state.
        - `rate`: sampling rate $1/\\Delta t$ in Hz.

        **Returns:** ``(next_state, p)``, $p_t$ the per-sample release probability (not clipped).
        """
        dt = 1.0 / float(rate)
        q, c, w = state
        drive = velocity + self.a
        k = jnp.where(drive > 0, (self.g * dt) * drive / (drive + self.b), 0.0)
        replenish = jnp.where(q < self.m, (self.y * self.m * dt) - (self.y * dt) * q, 0.0)
        eject = k * q
        reprocess = (self.x * dt) * w
        q_next = jnp.maximum(q + replenish - eject + reprocess, 0.0)
        c_next = jnp.maximum(c + eject - ((self.l + self.r) * dt) * c, 0.0)
        w_next = jnp.maximum(w + (self.r * dt) * c - reprocess, 0.0)
        return HairCellState(q_next, c_next, w_next), (self.h * dt) * c_next
