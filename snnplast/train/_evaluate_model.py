"""``evaluate_model``: a trained network's loss and accuracy on a split, in padded batches."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ._batches import padded_batches
from ._objective import evaluate_batch


@eqx.filter_jit
def _eval_step(model, x, y, weight):
    return evaluate_batch(model, x.astype(jnp.float32), y, weight)


def evaluate_model(model, split, batch: int = 250) -> tuple[float | None, float | None]:
    """Mean loss and accuracy of `model` over `split`, as ``fit`` reports them every epoch.

    **Arguments:**

    - `model`: a whole network (what ``fit`` trains and :func:`load_model` returns).
    - `split`: a ``snnplast.data.Split`` (``x [N, T, C]``, ``y [N]``), e.g. ``dataset.test``.
    - `batch`: samples per evaluation batch (memory only: the results do not depend on it).

    **Returns:** ``(loss, accuracy)``: the per-sample loss (cross-entropy summed over time) and
    the fraction of correct predictions; ``(None, None)`` for an empty split.
    """
    return evaluate_padded(model, split, min(batch, max(len(split.y), 1)))


def evaluate_padded(model, split, size: int) -> tuple[float | None, float | None]:
    """:func:`evaluate_model` in batches of exactly `size` (padded), so that splits of different
    lengths share one compiled evaluation."""
    n = len(split.y)
    if n == 0:
        return None, None
    loss_sum, correct = 0.0, 0.0
    for xb, yb, weight in padded_batches(split.x, split.y, size):
        loss_b, correct_b = _eval_step(model, xb, yb, weight)
        loss_sum += float(loss_b)
        correct += float(correct_b)
    return loss_sum / n, correct / n
