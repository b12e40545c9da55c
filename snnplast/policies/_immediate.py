from __future__ import annotations

import equinox as eqx

from ._base import Policy
from ._registry import register_method


class Immediate(Policy):
    """No temporal propagation: ``G_t = F_t`` (the d=0 rule of "Temporal credit is free").

    The gradient at step ``t`` is the learning signal times the immediate influence of the
    parameters on the state: BPTT truncated to one step. Memory and time are those of one step.
    """

    lam: float = eqx.field(default=0.0)

    def carry(self, block, a, b, context):
        return None


register_method(
    "immediate",
    Immediate,
    "nothing: G_t = F_t (the d = 0 rule, BPTT truncated to one step)",
)
