"""``OnlineLearner``: learning while a stream flows, shaped like an optax transformation."""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .._precision import match_precision
from .._rollout import check_loss
from ..policies import Policy
from ._blocked import BlockedStep, resolve_block
from ._online_step import Carry, OnlineStep
from ._sequence import at_time, check_block


class LearnerState(NamedTuple):
    carry: Carry  # cell state, traces and gradient accumulators, per stream
    opt_state: optax.OptState
    steps: jax.Array  # time steps seen so far
    updates: jax.Array  # parameter updates applied so far


class OnlineLearner:
    """Update a model's parameters every ``every`` steps while a stream of inputs flows.

    The cell state and the eligibility traces are carried across calls of :meth:`update`, so a
    stream of any length is fed in chunks and memory stays that of one chunk's inputs plus a
    fixed carry. Parameters change during the stream; the traces are kept across updates (the
    usual online approximation).

    **Arguments:**

    - `policy`: a transport policy (:class:`snnplast.Diagonal`, ...).
    - `loss`: ``loss(output_t, target_t) -> scalar``.
    - `optimizer`: an ``optax.GradientTransformation`` (default ``optax.adam(1e-3)``).
    - `every`: apply an update every this many steps (gradients are summed in between).
    - `block`: the most steps whose traces are accumulated at once when the policy's carried
      Jacobian is per unit (``None``: :func:`snnplast.online.resolve_block` chooses); blocks end at
      every update, so the block is ``every`` when that is smaller. ``1`` is the step-by-step
      recursion. The numbers do not depend on it.

    ```python
    learner = OnlineLearner(snnplast.Diagonal(), loss, optax.adam(1e-3), every=10)
    state = learner.init(model, x_example, key=key)
    for xs, ys in stream:  # chunks [T, ...] (or [B, T, ...] for B parallel streams)
        model, state, losses = learner.update(model, state, xs, ys)
    ```
    """

    def __init__(self, policy: Policy, loss, optimizer=None, *, every: int = 1, block=None):
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be a transport policy such as snnplast.Diagonal(), "
                            f"got {policy!r}")
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.policy = policy
        self.loss = loss
        self.optimizer = optimizer if optimizer is not None else optax.adam(1e-3)
        self.every = every
        self.block = check_block(block)
        self._runner: OnlineStep | None = None
        self._blocked: BlockedStep | None = None
        self._batched = False
        self._loss_checked = None  # one step's input and target shapes the loss was checked for
        self._update = eqx.filter_jit(self._update_impl)
        self._update_blocks = eqx.filter_jit(self._update_blocks_impl)

    def init(self, model, x_example, *, batch: int | None = None, key=None) -> LearnerState:
        """Start a stream (or ``batch`` parallel streams) from the model's initial state (a
        learned one gets its gradient through the stream's first step: :class:`FixedStart`)."""
        key = jax.random.PRNGKey(0) if key is None else key
        self._runner = OnlineStep(model, x_example, self.policy, self.loss)
        self._blocked = None
        self._block = min(resolve_block(self._runner, self.block), self.every)
        if self._block > 1:
            self._blocked = BlockedStep(self._runner)
        self._batched = batch is not None
        carry = self._runner.init(model, batch or 1, key)
        params = eqx.filter(model, eqx.is_inexact_array)
        with jax.numpy_dtype_promotion("standard"):
            opt_state = self.optimizer.init(params)
        return LearnerState(carry, opt_state, jnp.zeros((), jnp.int32),
                            jnp.zeros((), jnp.int32))

    def update(self, model, state: LearnerState, inputs, targets, *, key=None):
        """Feed one chunk of the stream.

        **Arguments:** `inputs` ``[T, ...]`` and `targets` ``[T, ...]`` (``[B, T, ...]`` if the
        learner was initialised with ``batch=B``).

        **Returns:** ``(model, state, losses)`` with the per-step losses ``[T]`` (summed over
        parallel streams).
        """
        if self._runner is None:
            raise RuntimeError("call OnlineLearner.init(model, x_example) before update")
        key = jax.random.PRNGKey(1) if key is None else key
        if not self._batched:
            inputs = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], inputs)
            targets = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[None], targets)
        # Float64 data for a float32 model (x64 on) in the model's precision, as gradients reads it.
        inputs, targets = match_precision(model, inputs, targets, self.loss, axes=2)
        # once per shapes, not at every chunk of a stream (it traces a step: ~4 ms)
        step_shapes = jax.tree_util.tree_map(lambda a: (a.shape[2:], a.dtype), (inputs, targets))
        if step_shapes != self._loss_checked:
            check_loss(model, inputs, targets, self.loss, axes=2)
            self._loss_checked = step_shapes
        if self._blocked is not None:
            try:
                start = int(state.steps)
            except (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError):
                start = None  # inside the caller's jit: blocks cannot be planned
            if start is not None:
                n = jax.tree_util.tree_leaves(inputs)[0].shape[1]
                plan = _plan(start, n, self.every, self._block)
                return self._update_blocks(model, state, inputs, targets, key, plan)
        return self._update(model, state, inputs, targets, key)

    def pending_gradients(self, model, state: LearnerState):
        """The gradient accumulated since the last parameter update, shaped like ``model``."""
        p = eqx.filter(model, eqx.is_inexact_array)
        leaves = jax.tree_util.tree_leaves(p)
        return self._runner.as_tree(self._runner.gradients(leaves, state.carry))

    def _update_impl(self, model, state: LearnerState, inputs, targets, key):
        runner = self._runner
        params, static = eqx.partition(model, eqx.is_inexact_array)
        n_steps = jax.tree_util.tree_leaves(inputs)[0].shape[1]

        def body(c, t):
            params, st = c
            x_t, y_t = (jax.tree_util.tree_map(lambda a: at_time(a, t), z)
                        for z in (inputs, targets))
            p_leaves = jax.tree_util.tree_leaves(params)
            carry = runner.step(p_leaves, st.carry, x_t, y_t, jax.random.fold_in(key, st.steps))
            loss_t = carry.loss - st.carry.loss
            steps = st.steps + 1
            grads = runner.as_tree(runner.gradients(p_leaves, carry))
            # optax mixes int32 step counts with floats; that is its business, not the model's.
            with jax.numpy_dtype_promotion("standard"):
                upd, opt_state = self.optimizer.update(grads, st.opt_state, params)
            apply = (steps % self.every) == 0
            new_params = optax.apply_updates(params, upd)

            def pick(a, b):
                return jax.tree_util.tree_map(lambda u, v: jnp.where(apply, u, v), a, b)

            params = pick(new_params, params)
            opt_state = pick(opt_state, st.opt_state)
            carry = pick(runner.reset_gradients(carry), carry)
            new = LearnerState(carry, opt_state, steps, st.updates + apply.astype(jnp.int32))
            return (params, new), loss_t

        (params, state), losses = jax.lax.scan(body, (params, state), jnp.arange(n_steps))
        return eqx.combine(params, static), state, losses


    def _update_blocks_impl(self, model, state: LearnerState, inputs, targets, key, plan):
        """:meth:`_update_impl` a block at a time: ``plan = (head, period, repeats, tail)``
        (see :func:`_plan`), ``period`` repeated ``repeats`` times."""
        runner, blocked = self._runner, self._blocked
        params, static = eqx.partition(model, eqx.is_inexact_array)
        offset = state.steps

        def piece(params, st, size, update):
            p_leaves = jax.tree_util.tree_leaves(params)
            carry, losses = blocked.block(p_leaves, st.carry, inputs, targets, key, size,
                                          offset=offset)
            steps = st.steps + size
            if not update:
                return params, LearnerState(carry, st.opt_state, steps, st.updates), losses
            grads = runner.as_tree(runner.gradients(p_leaves, carry))
            with jax.numpy_dtype_promotion("standard"):
                upd, opt_state = self.optimizer.update(grads, st.opt_state, params)
            params = optax.apply_updates(params, upd)
            return params, LearnerState(runner.reset_gradients(carry), opt_state, steps,
                                        st.updates + 1), losses

        def run(params, st, runs):
            """Pieces ``(steps, update_after, count)``; a repeated piece is a scan."""
            out = []
            for size, update, count in runs:
                if count == 1:
                    params, st, l_ = piece(params, st, size, update)
                else:
                    def body(c, _, size=size, update=update):
                        p, s, l_ = piece(*c, size, update)
                        return (p, s), l_

                    (params, st), l_ = jax.lax.scan(body, (params, st), None, length=count)
                out.append(l_.reshape(-1))
            return params, st, out

        head, period, repeats, tail = plan
        params, state, losses = run(params, state, head)
        if repeats:
            def one_period(c, _):
                p, s, out = run(*c, period)
                return (p, s), jnp.concatenate(out)

            (params, state), l_ = jax.lax.scan(one_period, (params, state), None,
                                               length=repeats)
            losses.append(l_.reshape(-1))
        params, state, more = run(params, state, tail)
        return eqx.combine(params, static), state, jnp.concatenate(losses + more)


def _pieces(start: int, end: int, every: int, block: int) -> tuple:
    """Cut steps ``[start, end)`` at every update (multiples of `every`) and into blocks of at
    most `block` counted from the last update: ``((steps, update_after, count), ...)`` with
    equal neighbours counted together."""
    out, t = [], start
    while t < end:
        next_update = (t // every + 1) * every
        last_update = next_update - every
        next_block = last_update + ((t - last_update) // block + 1) * block
        stop = min(next_block, next_update, end)
        piece = (stop - t, stop == next_update)
        if out and out[-1][:2] == piece:
            out[-1] = (*piece, out[-1][2] + 1)
        else:
            out.append((*piece, 1))
        t = stop
    return tuple(out)


def _plan(start: int, n: int, every: int, block: int):
    """The pieces of a chunk as ``(head, period, repeats, tail)``, so that a long chunk is a
    scan over whole update periods (static: the learner compiles once per distinct plan)."""
    end = start + n
    aligned = min(end, -(-start // every) * every)
    head = _pieces(start, aligned, every, block)
    repeats = (end - aligned) // every
    period = _pieces(0, every, every, block)
    tail = _pieces(aligned + repeats * every, end, every, block)
    return head, period, repeats, tail
