from __future__ import annotations

import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp

from .._errors import ValidationError
from ..engine import add, compose, dense, diagonal_part, materialize, scale
from ._base import Policy, check_lam
from ._registry import register_method


class RandomK(Policy):
    r"""Sparse RTRL ("Massive redundancy in gradient transport"): the trace carries the
    neuron-local part of ``H_t`` plus the paths through ``k`` hidden units.

    For a block ``H[a, b]`` between leaves of one shape (``n`` units after flattening), with
    ``D`` its diagonal part and ``m`` a 0/1 vector with ``k`` ones over the *input* units
    (columns):

    $$\tilde H = D + (H - D)\,\mathrm{diag}(m)\cdot s, \qquad s = n/k \text{ if scale else } 1$$

    so ``k = 0`` is :class:`Diagonal` and ``k = n`` is :class:`Exact`. Leaves of the same size
    share one selection (the same neurons). Blocks between leaves of different shapes keep their
    ``k`` selected columns only.

    `scale` (default ``False``, as the paper propagates through the sampled paths without
    rescaling): ``True`` multiplies the sampled paths by ``n/k`` so that one step's ``H~`` equals
    ``H`` in expectation. The trace is a product of such steps, and a product of independent
    ``n/k``-scaled samples is not the expectation of the product: its variance grows
    geometrically with time. Measured (``benchmarks/exp_random_k_default.py``: Elman RNN n=32,
    sine prediction, Adam 3e-3, k=4, 3 seeds): over the first 200 steps the scaled trace's
    per-step gradient has a median norm ~1e13 times Exact's and a cosine of 0.03 with it, and
    online learning diverged to NaN on 2 of 3 seeds; unscaled, the cosine is 0.98, the norm ratio
    1.0, and learning is as stable as Diagonal's. The
    price of ``False`` is a bias: the off-diagonal transport is shrunk by ``k/n`` on average.

    - `select="random"`: a fresh uniform sample of ``k`` units every `resample` steps (the same
      units for every sample of a batch);
    - `select="fixed"`: one sample at the start of each sequence, kept;
    - `select="adversarial"`: at each step the ``k`` columns of ``H - D`` with the smallest norm
      (the least informative paths), per sample.

    Cost per step: the carried part is kept as the product ``(H - D)[:, idx] S`` of an
    ``n x k`` block and a ``k x n`` selection, and the trace update multiplies each carried
    product in its cheapest order (:func:`snnplast.engine.plan_chain`): ``S`` meets the
    same-step Jacobians first, so the trace meets a ``k x n`` matrix (``k`` rows out, no
    full-size intermediate), and paths through the ``k`` units from several leaves are summed
    over those ``k`` rows before the ``n x k`` block. The trace
    passes through the ``k`` units in ``O(k * n * |theta|)`` instead of Exact's
    ``O(n^2 * |theta|)``; the trace itself is dense, as Exact's, so updating it still costs
    ``O(n * |theta|)`` per step and its memory is Exact's (the saving is compute, not memory).
    A block that is elementwise (a leak, an adaptation) is carried as its diagonal alone: it
    has no paths between units, and traces that only such blocks reach stay as compressed as
    Diagonal's. Measured (``benchmarks/trace_order.py``: ralif, batch 32, 140 inputs, 16
    hidden): the planned order is about twice as fast as applying the product right to left
    (same gradient); BPTT remains two orders of magnitude faster at this size.
    """

    k: int = eqx.field(static=True)
    resample: int | Literal["step"] = eqx.field(default="step", static=True)
    scale: bool = eqx.field(default=False, static=True)
    select: Literal["random", "adversarial", "fixed"] = eqx.field(default="random", static=True)
    lam: float = eqx.field(default=1.0, converter=check_lam)

    def __check_init__(self):
        if not isinstance(self.k, int) or isinstance(self.k, bool) or self.k < 0:
            raise ValidationError(f"RandomK: k must be a non-negative integer, got {self.k!r}")
        if self.resample != "step" and not (isinstance(self.resample, int) and self.resample > 0):
            raise ValidationError(f"RandomK: resample must be 'step' or a positive integer, "
                             f"got {self.resample!r}")
        if self.select not in ("random", "adversarial", "fixed"):
            raise ValidationError(f"RandomK: select must be 'random', 'adversarial' or 'fixed', "
                             f"got {self.select!r}")

    def _sizes(self, context):
        return sorted({math.prod(s) for s in context.s_shapes})

    def _sample(self, context, key):
        picks = {}
        for n, sub in zip(self._sizes(context), jax.random.split(key, len(self._sizes(context)))):
            picks[n] = jax.random.permutation(sub, n)[: min(self.k, n)]
        return picks

    def init_state(self, context, key):
        return self._sample(context, key)

    def next_state(self, state, context, step, key):
        if self.select != "random":
            return state
        every = 1 if self.resample == "step" else self.resample
        fresh = self._sample(context, key)
        redo = (step % every) == 0
        return {n: jnp.where(redo, fresh[n], state[n]) for n in state}

    def carry(self, block, a, b, context):
        n = math.prod(block.in_shape)
        k = min(self.k, n)
        d = diagonal_part(block)
        # k = 0 keeps the diagonal only; a block that is its own diagonal part (an elementwise
        # block: a leak, an adaptation) has H - D = 0 structurally, and its k paths would
        # carry exact zeros at full cost (two k x n products per trace) and densify the traces
        # it reaches (a readout's tied trace becomes n x |theta|).
        if k == 0 or d is block:
            return d
        off = block if d is None else add(block, scale(d, -1.0))
        if self.select == "adversarial":
            dense_off = materialize(off).reshape(-1, n)
            idx = jnp.argsort(jnp.sum(dense_off**2, axis=0))[:k]
        else:
            idx = context.state[n]
        # H~ = D + (H - D)[:, idx] @ S with S the k x n selection: the trace update then costs
        # O(k * n * |theta|) (two products through the k units) instead of O(n^2 * |theta|).
        onehot = jax.nn.one_hot(idx, n, dtype=block.val.dtype)  # [k, n]
        select = dense((k,), block.in_shape, onehot.reshape((k,) + block.in_shape), const=False)
        back = dense(block.in_shape, (k,), onehot.T.reshape(block.in_shape + (k,)), const=False)
        factor = n / k if self.scale else 1.0
        through_k = (scale(compose(off, back), factor), select)
        return [through_k] if d is None else [(d,), through_k]


register_method(
    "random-k",
    RandomK,
    "the diagonal plus the paths through K sampled units (sparse RTRL)",
    arg="k",
    kind=int,
)
