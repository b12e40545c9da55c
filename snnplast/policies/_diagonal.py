from __future__ import annotations

import equinox as eqx

from ..engine import diagonal_part
from ._base import Policy, check_lam
from ._registry import register_method


class Diagonal(Policy):
    """e-prop / SnAp-1: the trace carries only the neuron-local part of ``H_t``.

    For every pair of state leaves of one shape, the entries of ``H[a, b]`` with equal output
    and input index are kept (all of a neuron's own leaves: a 2x2 block for ALIF's ``v`` and
    ``a``); blocks between leaves of different shapes are dropped. Entries that are structurally
    zero (the masked diagonal of a recurrent weight) stay zero, so factored traces survive.
    """

    lam: float = eqx.field(default=1.0, converter=check_lam)

    def carry(self, block, a, b, context):
        return diagonal_part(block)


register_method("diagonal", Diagonal, "each neuron's own state leaves (e-prop, SnAp-1)")
