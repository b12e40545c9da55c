from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp

from .._errors import ValidationError
from ..engine import restrict_in
from ._base import Policy, check_lam
from ._registry import register_method


class HeadSparse(Policy):
    """Sparse gradient transport for attention: the trace propagates through a fraction of the
    heads only.

    Every state leaf whose leading axis is the head axis (``LinearAttention``'s ``S [H, d, d]``
    and ``s [H, d]``) has ``H[a, b]`` restricted to the selected heads (on the input side); the
    other heads' traces are immediate (``G = F``). ``round(fraction * H)`` heads are selected
    (at least one when ``fraction > 0``), uniformly at random, every `resample` steps
    (``"step"``), or once per sequence (``"never"``).
    """

    fraction: float = eqx.field(static=True)
    resample: int | Literal["step", "never"] = eqx.field(default="step", static=True)
    lam: float = eqx.field(default=1.0, converter=check_lam)

    def __check_init__(self):
        if not (isinstance(self.fraction, (int, float)) and 0.0 <= self.fraction <= 1.0):
            raise ValidationError(f"HeadSparse: fraction must lie in [0, 1], got {self.fraction!r}")
        ok = self.resample in ("step", "never") or (
            isinstance(self.resample, int) and self.resample > 0)
        if not ok:
            raise ValidationError(f"HeadSparse: resample must be 'step', 'never' or a positive "
                             f"integer, got {self.resample!r}")

    def _heads(self, context):
        return sorted({s[0] for s in context.s_shapes if len(s) >= 1})

    def _sample(self, context, key):
        masks = {}
        for h, sub in zip(self._heads(context), jax.random.split(key, len(self._heads(context)))):
            perm = jax.random.permutation(sub, h)
            masks[h] = jnp.zeros(h).at[perm[:self.n_selected(h)]].set(1.0)
        return masks

    def n_selected(self, heads: int) -> int:
        """How many of `heads` heads are selected (at least one when ``fraction > 0``)."""
        return 0 if self.fraction == 0 else max(1, round(self.fraction * heads))

    def selected(self, state, heads: int):
        """The indices (ascending, ``[n_selected(heads)]``) of the heads selected among
        `heads` in policy state `state`: the heads whose traces are stored."""
        return jnp.nonzero(state[heads], size=self.n_selected(heads))[0]

    def init_state(self, context, key):
        # A cell without a head axis would have every neuron taken for a head: refuse it.
        if not any(len(shape) >= 2 for shape in context.s_shapes):
            raise ValidationError(
                f"HeadSparse needs state leaves with a leading head axis ([heads, ...], as "
                f"LinearAttention's); this cell's state leaves are shaped "
                f"{', '.join(str(tuple(s)) for s in context.s_shapes)}"
            )
        return self._sample(context, key)

    def next_state(self, state, context, step, key):
        if self.resample == "never":
            return state
        every = 1 if self.resample == "step" else self.resample
        fresh = self._sample(context, key)
        return {h: jnp.where(step % every == 0, fresh[h], state[h]) for h in state}

    def carry(self, block, a, b, context):
        if not block.in_shape:
            return block
        h = block.in_shape[0]
        mask = context.state[h].astype(block.val.dtype)
        mask = jnp.broadcast_to(mask.reshape((h,) + (1,) * (len(block.in_shape) - 1)),
                                block.in_shape)
        return restrict_in(block, mask)


register_method(
    "head-sparse",
    HeadSparse,
    "the selected FRACTION of the attention heads (LinearAttention)",
    arg="fraction",
    kind=float,
)
