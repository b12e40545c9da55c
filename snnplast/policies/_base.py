"""What a transport policy is: a rule for how much of ``H_t`` the trace carries."""

from __future__ import annotations

import abc

import equinox as eqx

from ..engine._sjac import SJac


class Policy(eqx.Module):
    """Abstract base of transport policies.

    The influence recursion is ``G_t = lam * H~_t G_{t-1} + F_t`` with ``H~_t`` the part of the
    step's state Jacobian that the policy keeps. A policy sees one block ``H[a, b]``
    (``d state_a(t) / d state_b(t-1)``) at a time and returns what of it to carry.

    Every policy has a field `lam`: the trace decay; 1.0 is the exact recursion.
    """

    @abc.abstractmethod
    def carry(self, block: SJac, a: int, b: int, context: PolicyContext):
        """The part of block ``H[a, b]`` that the trace carries: ``None`` (nothing), an
        :class:`~snnplast.engine.SJac`, or a list of products, each a tuple of SJacs applied
        right to left (so a low-rank part is never multiplied out)."""

    def keep_trace(self, a: int, p: int, context: PolicyContext) -> bool:
        """Whether state leaf ``a`` keeps a trace for traced parameter ``p``. By default a leaf
        keeps traces only for parameters of its own layer (every leaf for a single cell)."""
        return context.same_layer(a, p)

    def restrict_trace(self, g: SJac, a: int, p: int, context: PolicyContext) -> SJac:
        """Optionally restrict the trace itself (Columnar keeps only a column's own part)."""
        return g

    def init_state(self, context: PolicyContext, key):
        """Per-sequence state of the policy (random selections); ``None`` if it has none."""
        return

    def next_state(self, state, context: PolicyContext, step, key):
        return state

    @property
    def name(self) -> str:
        return type(self).__name__


class PolicyContext:
    """What a policy may ask about the cell: shapes, layers, and per-step random state."""

    def __init__(self, s_shapes, phi_shapes, s_layers, phi_layers, state=None):
        self.s_shapes = s_shapes
        self.phi_shapes = phi_shapes
        self.s_layers = s_layers
        self.phi_layers = phi_layers
        self.state = state

    def same_layer(self, a: int, p: int) -> bool:
        return bool(self.s_layers[a] & self.phi_layers[p]) or self.s_layers[a] == {None}

    def with_state(self, state) -> PolicyContext:
        return PolicyContext(self.s_shapes, self.phi_shapes, self.s_layers, self.phi_layers,
                             state)


def check_lam(lam) -> float:
    if not (isinstance(lam, (int, float)) and 0.0 <= lam <= 1.0):
        raise ValueError(f"lam must be a number in [0, 1], got {lam!r}")
    return float(lam)
