"""``OnlineLearner``: learning while a stream flows, shaped like an optax transformation."""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ..policies._base import Policy
from ._engine import Carry, OnlineStep
from ._sequence import at_time


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

    ```python
    learner = OnlineLearner(snnplast.Diagonal(), loss, optax.adam(1e-3), every=10)
    state = learner.init(model, x_example, key=key)
    for xs, ys in stream:  # chunks [T, ...] (or [B, T, ...] for B parallel streams)
        model, state, losses = learner.update(model, state, xs, ys)
    ```
    """

    def __init__(self, policy: Policy, loss, optimizer=None, *, every: int = 1):
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be a transport policy such as snnplast.Diagonal(), "
                            f"got {policy!r}")
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.policy = policy
        self.loss = loss
        self.optimizer = optimizer if optimizer is not None else optax.adam(1e-3)
        self.every = every
        self._runner: OnlineStep | None = None
        self._batched = False
        self._update = eqx.filter_jit(self._update_impl)

    def init(self, model, x_example, *, batch: int | None = None, key=None) -> LearnerState:
        """Start a stream (or ``batch`` parallel streams) from the model's initial state."""
        key = jax.random.PRNGKey(0) if key is None else key
        self._runner = OnlineStep(model, x_example, self.policy, self.loss)
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

