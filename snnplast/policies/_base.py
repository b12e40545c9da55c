"""What a transport policy is: a rule for how much of ``H_t`` the trace carries."""

from __future__ import annotations

import abc
import math

import equinox as eqx

from .._errors import ValidationError
from ..engine import SJac


class PolicyContext:
    """What a policy may ask about the cell it runs on, given to every policy method.

    **Attributes:**

    - `s_shapes`: the shape of each state leaf (flattened ``cell.initial_state()``, one sample).
    - `phi_shapes`: the shape of each traced parameter (a parameter array, or a quantity computed
      from parameters alone once per step, such as a masked weight).
    - `s_layers`, `phi_layers`: for each state leaf / traced parameter, the set of indices of the
      ``Sequential`` layers it belongs to (``{0}`` for a single cell).
    - `state`: the policy's own per-sequence state (what :meth:`Policy.init_state` and
      :meth:`Policy.next_state` return), ``None`` for a policy without one.
    """

    def __init__(self, s_shapes, phi_shapes, s_layers, phi_layers, state=None):
        self.s_shapes = s_shapes
        self.phi_shapes = phi_shapes
        self.s_layers = s_layers
        self.phi_layers = phi_layers
        self.state = state

    def same_layer(self, a: int, p: int) -> bool:
        """Whether state leaf `a` and traced parameter `p` belong to one layer."""
        return bool(self.s_layers[a] & self.phi_layers[p]) or self.s_layers[a] == {None}

    def with_state(self, state) -> PolicyContext:
        """This context with the policy state replaced."""
        return PolicyContext(self.s_shapes, self.phi_shapes, self.s_layers, self.phi_layers,
                             state)


class Policy(eqx.Module):
    """Abstract base of transport policies: what of the recurrent Jacobian a trace carries.

    The trace of state leaf ``a`` with respect to traced parameter ``p`` follows
    ``G_t[a, p] = lam * sum_b H~_t[a, b] G_{t-1}[b, p] + F_t[a, p]`` where ``H~_t[a, b]`` is what
    :meth:`carry` keeps of the block ``H_t[a, b] = d state_a(t) / d state_b(t-1)``. A subclass
    implements :meth:`carry` and declares a field `lam` (the trace decay; 1.0 is the exact
    recursion); the other methods have defaults.

    **What a policy receives.** Blocks are :class:`snnplast.engine.SJac` structured Jacobians
    (``out_shape`` is state leaf ``a``'s shape, ``in_shape`` leaf ``b``'s), with the numbers of
    the current step (traced by JAX: no Python branching on values). Operations on them are in
    :mod:`snnplast.engine`: ``diagonal_part``, ``tie_part``, ``restrict_in``, ``compose``, ``add``,
    ``scale``, ``dense``, ``diagonal``, ``materialize``.

    **What it must return.** ``None`` (carry nothing), an SJac of the block's shapes, or a list
    of products, each a tuple of SJacs applied right to left whose product has the block's shapes
    (so a low-rank part is never multiplied out). The structure of what it returns must not
    depend on the step's values: it fixes the structure of the trace for the whole sequence.

    **Which structure to keep.** The trace is stored in the structure the carried blocks give it:
    returning a block with its ties (``diagonal_part`` keeps a diagonal diagonal) keeps traces
    compressed; materialising a block (``materialize``, ``dense``) makes every trace it reaches
    dense, as large as the RTRL influence matrix.
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
        """The policy state for step `step` (a traced integer), from the previous one."""
        return state

    @property
    def name(self) -> str:
        return type(self).__name__


def check_lam(lam) -> float:
    """Validate `lam`, the factor on the carried part of a trace: a finite number in [0, 1]."""
    if (
        isinstance(lam, bool)
        or not isinstance(lam, int | float)
        or not math.isfinite(lam)
        or not 0.0 <= lam <= 1.0
    ):
        raise ValidationError(f"lam must be a number in [0, 1], got {lam!r}")
    return float(lam)
