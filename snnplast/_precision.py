"""Inputs and targets in the precision the model runs in.

With ``jax_enable_x64`` on, float64 data (NumPy's default) fed to a float32 model makes its step
compute a float64 state from a float32 one, which ``lax.scan`` refuses with a raw carry-type
error; without x64, jnp would have made the data float32 to begin with. Every way of running a
sequence (BPTT, the online methods, :func:`snnplast.unroll`) reads it the same way:

- floating-point inputs are cast to the state's dtype when that is what keeps the state's
  dtype through a step, and left alone otherwise (a float64 model reads float32 inputs as they
  are; a mixed-precision step that casts its own inputs is not touched);
- floating-point targets are cast to the state's dtype when that is what makes each step's loss
  come out in it (the online methods accumulate the loss in the state's dtype);
- a step that changes its state's dtype whatever the inputs raises one line naming the leaf.
"""

from __future__ import annotations

import jax

from ._errors import ValidationTypeError
from .engine._dtype import cast_floats, input_dtype, state_changes, state_dtype


def _first(tree, axes: int = 1):
    """One step's entry of each leaf: index 0 along the `axes` leading axes."""
    return jax.tree_util.tree_map(lambda a: a[(0,) * axes], tree)


def _dtypes(tree) -> str:
    names = sorted({str(getattr(a, "dtype", type(a).__name__))
                    for a in jax.tree_util.tree_leaves(tree)})
    return "/".join(names)


def match_precision(model, inputs, targets=None, loss=None, *, axes: int = 1):
    """`inputs` (and `targets`) in the precision `model` runs in (see the module's text).

    **Arguments:**

    - `model`: a :class:`snnplast.Cell`.
    - `inputs`: ``[T, ...]``, or ``[B, T, ...]`` with ``axes=2``: the leading axes before one
      step's input.
    - `targets`, `loss`: optional, with the same leading axes; the loss of one step is traced,
      never run.

    **Returns:** ``inputs`` or ``(inputs, targets)`` when `targets` is given.

    **Raises:** :class:`snnplast.ValidationError` when one step changes a state leaf's dtype
    whatever the inputs' dtype.
    """
    state = model.initial_state()
    step = lambda s, x: model(s, x)
    dtype = input_dtype(step, state, _first(inputs, axes))
    if dtype is not None:
        inputs = cast_floats(inputs, dtype)
    changes = state_changes(step, state, _first(inputs, axes))
    if changes:
        paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(state)]
        leaf, before, after = changes[0]
        raise ValidationTypeError(
            f"one step of {type(model).__name__} turns state leaf {paths[leaf] or leaf} from "
            f"{before} into {after} (inputs {_dtypes(inputs)}): a state must keep its dtype "
            f"from step to step; return it as {before} (.astype) or build the model in {after}")
    if targets is None:
        return inputs
    if loss is not None:
        targets = _match_targets(model, state, _first(inputs, axes), targets, loss, axes)
    return inputs, targets


def _match_targets(model, state, x, targets, loss, axes):
    dtype = state_dtype(jax.tree_util.tree_leaves(state))
    cast = cast_floats(targets, dtype)
    if all(a is b for a, b in zip(jax.tree_util.tree_leaves(cast),
                                  jax.tree_util.tree_leaves(targets))):
        return targets

    def loss_dtype(y):
        def f():
            return loss(model(state, x)[1], _first(y, axes))
        try:
            return jax.eval_shape(f).dtype
        except (TypeError, ValueError, AttributeError):
            return None

    # Compared as strings: NumPy reads ``None == dtype('float64')`` as true.
    if str(loss_dtype(targets)) != str(dtype) and str(loss_dtype(cast)) == str(dtype):
        return cast
    return targets
