from __future__ import annotations

import equinox as eqx

from ._base import Policy, check_lam
from ._registry import register_method


class Exact(Policy):
    """Full RTRL: the trace carries all of ``H_t`` (dense influence matrix where the structure is
    dense). Equal to BPTT (with ``lam=1``); memory O(n_state x n_params) per sample where the
    Jacobians are dense, so it is the reference for small networks.

    Unlike the other policies, Exact keeps traces across layers of a ``Sequential`` too.
    """

    lam: float = eqx.field(default=1.0, converter=check_lam)

    def carry(self, block, a, b, context):
        return block

    def keep_trace(self, a, p, context):
        return True


register_method("exact", Exact, "all of H (full RTRL): equals BPTT")
