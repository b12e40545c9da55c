"""Online gradients of whole sequences (the same contract as the BPTT reference)."""

from __future__ import annotations

import equinox as eqx
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
    xs = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), inputs)
    ys = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), targets)

    def body(c, inp):
        x_t, y_t = inp
        # A key per step from the step count: no [T]-sized array of keys.
        return runner.step(p, c, x_t, y_t, jax.random.fold_in(key, c.t)), None

    carry, _ = jax.lax.scan(body, carry, (xs, ys))
    grads = [g / batch for g in runner.gradients(p, carry)]
    if with_scores:
        return carry.loss / batch, runner.as_tree(grads), carry.out_sum
    return carry.loss / batch, runner.as_tree(grads)


def online_sequence_gradients(model, inputs, targets, policy, loss, *, key=None):
    """Online gradient of one unbatched sequence (``inputs [T, ...]``)."""
    add_batch = lambda a: jnp.asarray(a)[None]
    _, grads = online_loss_and_grad(
        model, jax.tree_util.tree_map(add_batch, inputs),
        jax.tree_util.tree_map(add_batch, targets), policy, loss, key=key)
    return grads


online_loss_and_grad_jit = eqx.filter_jit(online_loss_and_grad)
