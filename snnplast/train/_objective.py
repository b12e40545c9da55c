"""The training objective and the one place where a gradient method is dispatched.

The loss is a cross-entropy at **every** time step of the readout's output against the
sample's label, summed over time and averaged over the batch. A per-step loss gives an error
signal at every step, which online methods need (a loss only at the end would leave them
nothing to learn from until the sequence is over). The prediction is the argmax of the readout
summed over time, the same quantity the per-step loss pushes up for the true class.

Cells describe one sample; batches are formed with ``jax.vmap`` over samples.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .._cell import Cell
from .._errors import ValidationError
from .._reverse_mode import reverse_mode
from .._rollout import unroll
from .._truncated import TruncatedBPTT
from ..online import online_loss_and_grad
from ..policies import Policy
from ._method import method_usages


def cross_entropy(logits: Float[Array, " K"], label: Int[Array, ""]) -> Float[Array, ""]:
    """Cross-entropy of one step: ``logsumexp(logits) - logits[label]``."""
    return jax.nn.logsumexp(logits) - logits[label]


def sample_objective(model: Cell, x: Float[Array, "T C"], label: Int[Array, ""]):
    """The loss of one sample and its class scores.

    The loss equals ``snnplast.sequence_loss(model, x, [label] * T, cross_entropy)``; it is
    computed from the unrolled outputs here so that the scores come from the same pass.

    **Returns:** ``(loss, scores)``: the per-step cross-entropy summed over time (a scalar) and
    the readout summed over time ``[K]``, whose argmax is the prediction.
    """
    targets = jnp.broadcast_to(label, x.shape[:1])
    _, outputs = unroll(model, x)
    loss = jnp.sum(jax.vmap(cross_entropy)(outputs, targets))
    return loss, jnp.sum(outputs, axis=0)


def batch_objective(model: Cell, x: Float[Array, "B T C"], y: Int[Array, " B"]):
    """The batch-mean loss and the per-sample scores ``[B, K]`` (``vmap`` over samples)."""
    losses, scores = jax.vmap(sample_objective, in_axes=(None, 0, 0))(model, x, y)
    return jnp.mean(losses), scores


def evaluate_batch(model: Cell, x: Float[Array, "B T C"], y: Int[Array, " B"], weight):
    """Summed loss and number of correct predictions over the samples with ``weight`` 1.

    `weight` ``[B]`` is 0 on padding, so that every evaluation batch has one shape and the
    evaluation compiles once.
    """
    losses, scores = jax.vmap(sample_objective, in_axes=(None, 0, 0))(model, x, y)
    weight = weight.astype(losses.dtype)  # a float64 model (x64 on) scores float32 data
    correct = (jnp.argmax(scores, axis=-1).astype(y.dtype) == y).astype(weight.dtype)
    return jnp.sum(weight * losses), jnp.sum(weight * correct)


def loss_and_grad(model: Cell, x: Float[Array, "B T C"], y: Int[Array, " B"], method="bptt",
                  block=None):
    """The batch loss, the class scores and the gradient of the loss, by `method`.

    Every gradient method of the trainer passes through here: ``"bptt"``, or any
    :class:`snnplast.Policy` (a registered method's, or a user's own), whose traces the online
    learner runs.

    **Arguments:**

    - `model`: the network, a :class:`snnplast.Cell` for one sample.
    - `x`: inputs ``[B, T, C]`` (floating point).
    - `y`: labels ``[B]`` (int32).
    - `method`: what :func:`parse_method` returns; ``"bptt"`` differentiates the batch mean
      through the unrolled scan.
    - `block`: steps per block of an online method's trace accumulation (see
      :func:`snnplast.gradients`); ``None`` is the default block.

    **Returns:** ``((loss, scores), grads)``: the batch-mean loss, the scores ``[B, K]`` and a
    pytree shaped like `model` (``None`` where it has no trainable array).
    """
    with reverse_mode(model, jax.ShapeDtypeStruct(x.shape[2:], x.dtype)):
        return _loss_and_grad(model, x, y, method, block)


def _loss_and_grad(model, x, y, method, block):
    """:func:`loss_and_grad`'s work, by `method`."""
    if isinstance(method, str) and method == "bptt":
        return eqx.filter_value_and_grad(batch_objective, has_aux=True)(model, x, y)
    if isinstance(method, Policy):
        # One target per sequence, read at every step in place (a [B, T] copy grows with T).
        loss, grads, scores = online_loss_and_grad(model, x, y[:, None], method, cross_entropy,
                                                   with_scores=True, block=block)
        return (loss, scores), grads
    if isinstance(method, TruncatedBPTT):
        # As for the online methods: the label read at every step, not a [B, T] copy of it.
        loss, grads, scores = method.loss_and_grad(model, x, y[:, None], cross_entropy,
                                                   with_scores=True)
        return (loss, scores), grads
    raise ValidationError(
        f"loss_and_grad takes 'bptt' or a Policy (parse_method makes one of "
        f"{', '.join(method_usages())}); got {method!r}"
    )
