"""``evaluate_model``: a trained network's loss and accuracy on a split, as ``fit`` reports them."""

from __future__ import annotations

from .._errors import ValidationTypeError
from ._config import positive_int
from ._sharding import DataParallel
from ._trainer import _evaluate


def evaluate_model(model, split, batch: int = 250) -> tuple[float | None, float | None]:
    """Mean loss and accuracy of `model` over `split`, as ``fit`` reports them every epoch.

    **Arguments:**

    - `model`: a whole network (what ``fit`` trains and :func:`load_model` returns).
    - `split`: a ``snnplast.data.Split`` (``x [N, T, C]``, ``y [N]``), e.g. ``dataset.test``.
    - `batch`: samples per evaluation batch (memory only: the results do not depend on it).

    **Returns:** ``(loss, accuracy)``: the per-sample loss (cross-entropy summed over time) and
    the fraction of correct predictions; ``(None, None)`` for an empty split.
    """
    if not (hasattr(split, "x") and hasattr(split, "y")):
        hint = "; pass one of its splits, e.g. dataset.test" if hasattr(split, "test") else ""
        raise ValidationTypeError(
            f"split must be a snnplast.data.Split (x [N, T, C], y [N]), got "
            f"{type(split).__name__}{hint}"
        )
    positive_int("batch", batch)
    # One device: the evaluation of a model in hand, whatever the batch size.
    return _evaluate(model, split, max(1, min(batch, len(split.y))), DataParallel(1))
