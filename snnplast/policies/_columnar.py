from __future__ import annotations

import equinox as eqx

from ..engine import diagonal_part, tie_part
from ._base import Policy, check_lam
from ._registry import register_method


class ColumnarPolicy(Policy):
    """Master-User (Javed et al. 2023): each parameter tracks only its own column's scalar state.

    ``H`` is reduced to its diagonal (each column's own state) and every trace ``G[a, p]`` to the
    entries where the column index of the state (its leading axis) equals the leading axis of the
    parameter (the column the parameter belongs to: ``A_i, a_i, U_i, r_i, b_i`` of
    :class:`snnplast.Columnar`). That is ``O(|theta|)`` numbers per sample, and exact when the
    network has no lateral connections. Parameters whose leading axis is not the column axis keep
    their diagonal-policy trace.

    For prediction weights learned online by LMS and the meta-gradient through those updates
    (the extra ``TW`` trace of the paper's section 5), see
    :func:`snnplast.online.master_user_lms`.
    """

    lam: float = eqx.field(default=1.0, converter=check_lam)

    def carry(self, block, a, b, context):
        return diagonal_part(block)

    def restrict_trace(self, g, a, p, context):
        if not g.out_shape or not g.in_shape or g.out_shape[0] != g.in_shape[0]:
            return g
        part = tie_part(g, 0, 0)
        return g if part is None else part


register_method(
    "columnar",
    ColumnarPolicy,
    "each column's own scalar state (Master-User; Columnar cells)",
)
