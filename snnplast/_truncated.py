"""Truncated backpropagation through time: a gradient method of its own, not a transport policy."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ._cell import Cell
from ._rollout import check_loss
from .online._sequence import check_targets


class TruncatedBPTT(eqx.Module):
    r"""T-BPTT (Williams & Peng 1990) with a sliding window: the loss of step ``t`` is
    differentiated through the last `window` steps only, the state before them held constant.

    $$\nabla_\theta L \approx \sum_t \frac{\partial\, l_t\big(f_\theta^{(t)} \circ \dots \circ
      f_\theta^{(t-K+1)}(\bar s_{t-K})\big)}{\partial\theta},
      \qquad \bar s_{t-K} = \mathrm{stop\_gradient}(s_{t-K}),\ K = \text{window}$$

    where ``f^{(t)}`` is the cell's step at time ``t``. Every parameter's influence on the losses
    of the next ``K - 1`` steps is counted, none beyond (the variant of Javed et al. 2023's
    test-bed). ``window=1`` counts only the step that produced the output (Elman's rule);
    ``window=2`` equals :class:`snnplast.Immediate` (whose learning signal takes one transition
    ``d out_t / d s_{t-1}``); ``window >= T`` is BPTT.

    Why it is not a transport policy: a trace carries the whole past with geometric decay at
    best, while a sliding window must *forget* each contribution exactly ``K`` steps later, which
    a single trace cannot do (it would need ``K`` traces, ``K`` times Exact's memory). It is
    computed in reverse mode instead, at ``O(T * K)`` cell steps per sequence, the windows of a
    chunk of steps batched by ``vmap`` (memory ``O(chunk * K)`` states per sample).

    **Arguments:** `window`: a positive integer, the number of steps each loss is
    differentiated through; `chunk`: how many windows are differentiated at once.
    """

    window: int = eqx.field(static=True)
    chunk: int = eqx.field(default=16, static=True)

    def __check_init__(self):
        for name in ("window", "chunk"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"TruncatedBPTT: {name} must be a positive integer, got {v!r}")

    @property
    def name(self) -> str:
        return f"TruncatedBPTT({self.window})"

    def sequence_loss_and_grad(self, model: Cell, inputs, targets, loss: Callable):
        """Loss, T-BPTT gradient and summed outputs of one unbatched sequence ``[T, ...]``;
        `targets` ``[T, ...]``, or ``[1, ...]`` for the same target at every step (read in
        place, as :func:`snnplast.online.online_loss_and_grad` reads it).

        **Returns:** ``(loss, grads, out_sum)``: ``sum_t loss(out_t, y_t)`` (the true loss, from
        one forward pass), a pytree shaped like `model`, and the outputs summed over time.
        """
        params, static = eqx.partition(model, eqx.is_inexact_array)
        n_steps = jax.tree_util.tree_leaves(inputs)[0].shape[0]
        at = lambda tree, i: jax.tree_util.tree_map(lambda a: a[i], tree)

        def forward(s, x):
            s, out = model(s, x)
            return s, (s, out)

        s0 = model.initial_state()
        _, (states, outs) = jax.lax.scan(forward, s0, inputs)
        # before[t]: the state entering step t (constant: the gradient stops there).
        before = jax.lax.stop_gradient(jax.tree_util.tree_map(
            lambda a0, a: jnp.concatenate([a0[None], a[:-1]]), s0, states))
        k = self.window

        def window_loss(p, t, weight):
            m = eqx.combine(p, static)
            start = t - k + 1

            def body(s, j):
                i = start + j
                s_new, out = m(s, at(inputs, jnp.maximum(i, 0)))
                # Steps before the sequence's start do not exist: the state passes unchanged.
                s = jax.tree_util.tree_map(lambda a, b: jnp.where(i >= 0, a, b), s_new, s)
                return s, out

            _, w_outs = jax.lax.scan(body, at(before, jnp.maximum(start, 0)), jnp.arange(k))
            return weight * loss(at(w_outs, k - 1), _step_target(targets, t))

        c = min(self.chunk, n_steps)
        n_chunks = -(-n_steps // c)
        ts = jnp.arange(n_chunks * c).reshape(n_chunks, c)

        def chunk_grad(acc, t_chunk):
            weight = (t_chunk < n_steps).astype(jax.tree_util.tree_leaves(inputs)[0].dtype)
            t_chunk = jnp.minimum(t_chunk, n_steps - 1)
            g = jax.grad(lambda p: jnp.sum(jax.vmap(window_loss, (None, 0, 0))(
                p, t_chunk, weight)))(params)
            return jax.tree_util.tree_map(jnp.add, acc, g), None

        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        grads, _ = jax.lax.scan(chunk_grad, zeros, ts)
        total = jnp.sum(jax.vmap(lambda o, t: loss(o, _step_target(targets, t)))(
            outs, jnp.arange(n_steps)))
        out_sum = jax.tree_util.tree_map(lambda o: jnp.sum(o, axis=0), outs)
        return total, grads, out_sum

    def loss_and_grad(self, model: Cell, inputs, targets, loss: Callable, *,
                      with_scores: bool = False):
        """Batch mean of the loss and of the T-BPTT gradient (the contract of
        :func:`snnplast.online.online_loss_and_grad`): `inputs` ``[B, T, ...]``, `targets`
        ``[B, T, ...]``, or ``[B, 1, ...]`` for the same target at every step (a class label,
        read in place rather than broadcast to a ``[B, T]`` array).

        **Returns:** ``(loss, grads)``, and the outputs summed over time ``[B, ...]`` if
        `with_scores`.
        """
        check_targets(targets, jax.tree_util.tree_leaves(inputs)[0].shape[1])
        check_loss(model, inputs, targets, loss, axes=2)
        losses, grads, scores = jax.vmap(
            lambda x, y: self.sequence_loss_and_grad(model, x, y, loss))(inputs, targets)
        grads = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), grads)
        if with_scores:
            return jnp.mean(losses), grads, scores
        return jnp.mean(losses), grads


def _step_target(targets, t):
    """Step `t`'s target of one sequence: ``targets[t]``, or ``targets[0]`` for a leaf whose
    time axis has length 1 (the same target at every step)."""
    return jax.tree_util.tree_map(lambda a: a[0] if a.shape[0] == 1 else a[t], targets)
