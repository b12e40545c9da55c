"""What one step of a cell must return: ``(new_state, output)``, the state shaped as it came in.

A step that breaks this fails later, deep in ``lax.scan`` or in an unpacking, with an error that
does not say which rule was broken; or it runs wrong without failing (a step that returns its new
state alone, as Equinox's ``GRUCell`` does, is unpacked along its first axis when that axis has
length 2). The check runs on shapes only (``jax.eval_shape``), once where a step is traced.
"""

from __future__ import annotations

import jax
import numpy as np

from ._errors import ValidationError, ValidationTypeError


def _describe(tree) -> str:
    if hasattr(tree, "shape") and hasattr(tree, "dtype"):  # an array, a tracer or its shape
        return f"an array of shape {tuple(tree.shape)}"
    return f"a {type(tree).__name__}"


def check_step_result(cell, state, result) -> None:
    """Raise a one-line error unless `result` (shapes of what one step of `cell` returned from
    a state shaped like `state`) is a pair whose first element has `state`'s structure and
    shapes (dtypes are :mod:`snnplast._precision`'s to check).

    **Arguments:**

    - `cell`: the cell, for its name.
    - `state`: ``cell.initial_state()`` or its shapes.
    - `result`: the step's return value or its shapes (``jax.eval_shape``).

    **Raises:** :class:`ValidationTypeError` for a result that is not ``(new_state, output)`` or
    whose state has another structure; :class:`ValidationError` for a state leaf of another
    shape.
    """
    name = type(cell).__name__
    if not isinstance(result, tuple) or len(result) != 2:
        raise ValidationTypeError(
            f"one step of {name} returned {_describe(result)}"
            + (f" of {len(result)} items" if isinstance(result, (tuple, list)) else "")
            + "; a Cell's __call__(state, x) returns the pair (new_state, output) (Equinox's "
            "GRUCell and LSTMCell return the new state alone: return (h, h), or (h, c), h)"
        )
    new_state = result[0]
    before, after = (jax.tree_util.tree_structure(s) for s in (state, new_state))
    if before != after:
        raise ValidationTypeError(
            f"one step of {name} returns a state structured as {after}, but initial_state() "
            f"gives {before}: they must be the same (a list is not a tuple)"
        )
    paths = jax.tree_util.tree_flatten_with_path(state)[0]
    for (path, old), new in zip(paths, jax.tree_util.tree_leaves(new_state), strict=True):
        if np.shape(old) != np.shape(new):
            where = f"state leaf {jax.tree_util.keystr(path)}" if path else "the state"
            raise ValidationError(
                f"one step of {name} turns {where} of shape {np.shape(old)} (initial_state()) "
                f"into shape {np.shape(new)}: a step must keep the state's shapes"
            )


def step_result(cell, x):
    """The shapes of ``cell(cell.initial_state(), x)``, checked by :func:`check_step_result`.

    Errors of the step itself propagate as the step raised them.
    """
    state = cell.initial_state()
    # the step as a plain function: jax.eval_shape(cell, ...) makes JAX jit the module itself
    result = jax.eval_shape(lambda s, xx: cell(s, xx), state, x)
    check_step_result(cell, state, result)
    return result
