"""``snnplast.gradients``: one entry point for every way of computing a sequence's gradient."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax

from ._cell import Cell
from ._compiled import clear, compiled_call
from ._precision import match_precision
from ._reverse_mode import reverse_mode
from ._rollout import check_loss, check_sequence, check_step, sequence_loss
from ._truncated import TruncatedBPTT
from .online import online_sequence_gradients
from .policies import METHODS, Policy

_METHODS = ("bptt",)


def _bptt(model, inputs, targets, loss):
    return eqx.filter_grad(sequence_loss)(model, inputs, targets, loss)


def gradients(model: Cell, inputs, targets, *, method="bptt", loss: Callable, key=None,
              block=None):
    """Gradient of ``sum_t loss(model output at t, targets[t])`` for one unbatched sequence.

    **Arguments:**

    - `model`: a :class:`snnplast.Cell`.
    - `inputs`: ``[T, ...]``, one input per time step.
    - `targets`: ``[T, ...]``, one target per time step.
    - `method`: ``"bptt"`` (reverse mode through ``lax.scan``, the reference), a transport
      policy (:class:`snnplast.Exact`, :class:`snnplast.Diagonal`, ...): the online gradient
      accumulated step by step from eligibility traces, with no backward pass through time, or
      :class:`snnplast.TruncatedBPTT` (each step's loss through its last ``window`` steps).
    - `key`: PRNG key for random policies (``RandomK``, ``HeadSparse``).
    - `loss`: ``loss(output_t, target_t) -> scalar``; summed over time. A loss that returns an
      array per step (one value per output element) is a one-line error naming its shape:
      reduce it with the sum or the mean you mean.
    - `block`: for a policy whose carried Jacobian is per unit (``Diagonal``, ``Immediate``,
      ``ColumnarPolicy``, ``HeadSparse`` on per-head state), the traces are accumulated this
      many steps at a time: the same numbers, with per-synapse work once per block and the
      rest as matmuls. ``1`` is the step-by-step recursion; ``None`` a fixed default
      (:data:`snnplast.online.DEFAULT_BLOCK`); any size above ``T`` is one block. Other
      policies (``Exact`` and ``RandomK`` on recurrent cells) always run step by step;
      :func:`snnplast.online.accumulation_mode` says which a policy gets and why.
      ``HeadSparse`` with ``block`` ``None`` or ``1`` runs step by step and stores only the
      selected heads' traces (:class:`snnplast.online.GatheredHeadStep`).

    Floating-point inputs and targets of another precision than the model's state (float64
    data for a float32 model with ``jax_enable_x64`` on) are read in the state's, the same way
    for every method (:mod:`snnplast._precision`).

    The program compiled for a call is kept and reused by calls with the same model structure
    and non-floating values, an equal method, the same loss object, block and array shapes
    (:mod:`snnplast._compiled`); like ``jax.jit``, it reads a global variable when it compiles.
    ``gradients.cache_clear()`` drops the programs kept.

    **Returns:** a pytree with the structure of `model`: gradients where the model has trainable
    (inexact) arrays, ``None`` elsewhere.
    """
    if not isinstance(model, Cell):
        raise TypeError(f"model must be a snnplast.Cell, got {type(model).__name__}")
    if not callable(loss):
        raise TypeError(f"loss must be callable as loss(output, target), got {loss!r}")
    check_sequence(inputs, targets)
    inputs, targets = match_precision(model, inputs, targets, loss)
    first = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), inputs)
    with reverse_mode(model, first):
        # compiled once per model structure, method, loss and shapes, and reused by later calls
        return compiled_call(_run, model, inputs, targets, key, (method, loss, block))


gradients.cache_clear = clear


def _run(model, inputs, targets, key, method, loss, block):
    # Checked where the program is traced: a call that reuses it has the same step, loss and
    # shapes, which these checks read, so it would pass them again.
    check_step(model, inputs)
    check_loss(model, inputs, targets, loss)
    return _dispatch(model, inputs, targets, method, loss, key, block)


def _dispatch(model, inputs, targets, method, loss, key, block):
    """The gradient by `method`, for inputs already checked."""
    if isinstance(method, str):
        if method not in _METHODS:
            name = method.strip().lower().partition(":")[0]
            hint = ""
            if name in METHODS:
                policy = METHODS[name].policy.__name__
                hint = (f" ({method!r} is the command line's name for snnplast.{policy}; "
                        f"snnplast.policies.policy_from_text({method!r}) builds it)")  # fmt: skip
            raise ValueError(
                f"method must be 'bptt' or a transport policy such as snnplast.Diagonal(), "
                f"got {method!r}{hint}"
            )
        if block is not None:
            raise ValueError(f"block has no meaning for method 'bptt', got block={block!r}")
        return _bptt(model, inputs, targets, loss)
    if isinstance(method, Policy):
        return online_sequence_gradients(model, inputs, targets, method, loss, key=key,
                                         block=block)
    if isinstance(method, TruncatedBPTT):
        if block is not None:
            raise ValueError(f"block has no meaning for TruncatedBPTT, got block={block!r}")
        return method.sequence_loss_and_grad(model, inputs, targets, loss)[1]
    raise TypeError(
        f"method must be 'bptt', a transport policy such as snnplast.Diagonal() or "
        f"snnplast.TruncatedBPTT(window), got {method!r}"
    )
