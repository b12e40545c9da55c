"""Running a cell over time (lax.scan) and a per-step loss summed over the sequence."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from ._cell import Cell
from ._errors import ValidationError, ValidationTypeError
from ._precision import match_precision
from ._step_contract import step_result


def check_sequence(inputs, targets) -> None:
    """Raise a one-line error unless ``inputs`` and ``targets`` share a non-empty time axis."""
    leaves_x = jax.tree_util.tree_leaves(inputs)
    leaves_y = jax.tree_util.tree_leaves(targets)
    if not leaves_x or not leaves_y:
        raise ValueError("inputs and targets must be arrays with a leading time axis, got empty")
    t_x = {jnp.shape(a)[0] if jnp.ndim(a) else None for a in leaves_x}
    t_y = {jnp.shape(a)[0] if jnp.ndim(a) else None for a in leaves_y}
    if None in t_x or None in t_y:
        raise ValueError("inputs and targets need a leading time axis [T, ...], got a scalar")
    if len(t_x | t_y) != 1:
        raise ValueError(
            f"inputs and targets must have the same number of time steps, got {sorted(t_x)} "
            f"and {sorted(t_y)}"
        )
    if 0 in t_x:
        raise ValueError("inputs have zero time steps; need T >= 1")


def check_step(model: Cell, inputs) -> None:
    """Raise a one-line error when one step of `model` cannot read ``inputs[0]``: a batch
    ``[B, T, ...]`` given where one sequence ``[T, ...]`` goes (the step reads
    ``inputs[0, 0]``) is named as such; any other shape or dtype the step refuses (an input of
    the wrong width) names the shape, with the step's own error after it; a step that returns
    something else than ``(new_state, output)`` with the state's shapes says so
    (:func:`~snnplast._step_contract.check_step_result`)."""

    def error(x):
        try:
            step_result(model, x)
        except ValidationError:
            raise  # the step ran but broke the (new_state, output) contract: said as such
        except (TypeError, ValueError) as e:
            return e
        return None

    leaves = jax.tree_util.tree_leaves(inputs)
    if not leaves or not all(jnp.ndim(a) >= 1 for a in leaves):
        return  # check_sequence's error
    first = jax.tree_util.tree_map(lambda a: a[0], inputs)
    failure = error(first)
    if failure is None or isinstance(failure, jax.errors.JAXTypeError):
        # Python control flow on a traced value (``if v > 1``) fails for every input shape:
        # the step's own error, from the run, says what to change.
        return
    shapes = jax.tree_util.tree_map(jnp.shape, inputs)
    if all(jnp.ndim(a) >= 2 for a in leaves) and error(
            jax.tree_util.tree_map(lambda a: a[0], first)) is None:
        raise ValueError(
            f"inputs {shapes} look like a batch of sequences: gradients takes one unbatched "
            f"sequence [T, ...] (one step of the model reads inputs[0, 0], not inputs[0]); for a "
            f"batch, jax.vmap over the sequences"
        )
    step_shapes = jax.tree_util.tree_map(jnp.shape, first)
    reason = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
    # The step's own failure, framed by the input it was given: a wrong width is the usual
    # cause, but a bug of the cell (a dtype it cannot mix) reads the same. Still a TypeError
    # where the step raised one.
    error_type = ValidationTypeError if isinstance(failure, TypeError) else ValidationError
    raise error_type(
        f"one step of {type(model).__name__} fails on inputs[0] of shape {step_shapes} "
        f"(inputs {shapes}, one step's input per row): {reason}"
    ) from failure


def check_loss(model: Cell, inputs, targets, loss: Callable, axes: int = 1) -> None:
    """Raise a one-line error unless `loss` of one step's output and target is a scalar.

    A loss that returns one value per element (``(out - y) ** 2``) would be summed over them,
    by every method alike: a scale the user did not choose (a sum where a mean was meant), and
    never an error. So it is refused, naming the shape, and the user reduces it as they mean
    to. `axes` leading axes (1: ``[T, ...]``, 2: ``[B, T, ...]``) come before one step's input
    and target; the loss is traced, never run, and a loss that fails to trace is left to fail
    as it runs, with its own error.
    """
    first = lambda tree: jax.tree_util.tree_map(lambda a: jnp.asarray(a)[(0,) * axes], tree)
    x, y = first(inputs), first(targets)
    try:
        out = jax.eval_shape(lambda xx, yy: loss(model(model.initial_state(), xx)[1], yy), x, y)
    except Exception:  # noqa: BLE001 - any failure here is the run's to report, not this check's
        return
    leaves = jax.tree_util.tree_leaves(out)
    if len(leaves) == 1 and leaves[0].shape == ():
        return
    got = (f"an array of shape {leaves[0].shape}" if len(leaves) == 1
           else f"{type(out).__name__} of {len(leaves)} arrays")  # fmt: skip
    shape = lambda tree: jax.tree_util.tree_map(jnp.shape, tree)
    raise ValidationError(
        f"loss(output, target) returned {got} for one step (output "
        f"{shape(jax.eval_shape(lambda xx: model(model.initial_state(), xx)[1], x))}, target "
        f"{shape(y)}); it must return a scalar per step: reduce it, e.g. with jnp.sum or "
        "jnp.mean over its elements, whichever scale you mean"
    )


def unroll(model: Cell, inputs, state=None):
    """Run ``model`` over ``inputs`` ``[T, ...]`` from ``state`` (default: its initial state).

    Floating-point inputs of another precision than the model's state are read in the
    state's (:func:`~snnplast._precision.match_precision`).

    **Returns:** ``(final_state, outputs)`` with ``outputs`` stacked over time.
    """
    inputs = match_precision(model, inputs)
    if state is None:
        state = model.initial_state()
    return jax.lax.scan(lambda s, x: model(s, x), state, inputs)


def sequence_loss(model: Cell, inputs, targets, loss: Callable, state=None):
    """``sum_t loss(output_t, target_t)`` for one unbatched sequence, with inputs and targets
    in the model's precision (:func:`~snnplast._precision.match_precision`); `loss` must
    return a scalar (:func:`check_loss`)."""
    inputs, targets = match_precision(model, inputs, targets, loss)
    check_loss(model, inputs, targets, loss)
    if state is None:
        state = model.initial_state()

    def step(s, xy):
        x, y = xy
        s, out = model(s, x)
        return s, loss(out, y)

    _, losses = jax.lax.scan(step, state, (inputs, targets))
    return jnp.sum(losses)
