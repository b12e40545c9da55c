"""Online gradients of whole sequences (the same contract as the BPTT reference)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._engine import OnlineStep


def online_loss_and_grad(model, inputs, targets, policy, loss, *, key=None, with_scores=False):
    """Mean over the batch of ``sum_t loss(out_t, y_t)`` and its online gradient.

    **Arguments:**

    - `inputs`: ``[B, T, ...]``; `targets`: ``[B, T, ...]``.
    - `policy`: a transport policy; `key`: PRNG key for random policies (default key 0).
    - `with_scores`: also return the outputs summed over time ``[B, ...]``.

    **Returns:** ``(loss, grads)`` (and the summed outputs) with ``grads`` shaped like the model
    (``None`` where the model has no trainable array).
    """
    key = jax.random.PRNGKey(0) if key is None else key
    batch = jax.tree_util.tree_leaves(inputs)[0].shape[0]
    x0 = jax.tree_util.tree_map(lambda a: a[0, 0], inputs)
    runner = OnlineStep(model, x0, policy, loss)
    p = runner.graph.split(model)
    carry = runner.init(model, batch, key)
    n_steps = jax.tree_util.tree_leaves(inputs)[0].shape[1]

    def body(c, _):
        # Step t is read in place along the time axis (a time-major copy of the inputs would
        # grow with T), and its key comes from the step count.
        x_t, y_t = (jax.tree_util.tree_map(lambda a: at_time(a, c.t), z) for z in (inputs, targets))
        return runner.step(p, c, x_t, y_t, jax.random.fold_in(key, c.t)), None

    carry, _ = jax.lax.scan(body, carry, None, length=n_steps)
    grads = [g / batch for g in runner.gradients(p, carry)]
    if with_scores:
        return carry.loss / batch, runner.as_tree(grads), carry.out_sum
    return carry.loss / batch, runner.as_tree(grads)


def at_time(a, t):
    """``a[:, t]`` for a batch-major array, without copying the rest."""
    return jax.lax.dynamic_index_in_dim(a, t, axis=1, keepdims=False)


def online_sequence_gradients(model, inputs, targets, policy, loss, *, key=None):
    """Online gradient of one unbatched sequence (``inputs [T, ...]``)."""
    add_batch = lambda a: jnp.asarray(a)[None]
    _, grads = online_loss_and_grad(
        model, jax.tree_util.tree_map(add_batch, inputs),
        jax.tree_util.tree_map(add_batch, targets), policy, loss, key=key)
    return grads

