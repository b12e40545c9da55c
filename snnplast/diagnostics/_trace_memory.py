"""What a transport policy's eligibility traces cost per sample, trace by trace."""

from __future__ import annotations

import math

import jax.numpy as jnp

from .._cell import Cell
from ..engine import SJac
from ..online import GatheredHeadStep, OnlineStep
from ..policies import Policy


def _trace_class(stored: int, out_size: int, param_size: int) -> str:
    if stored < param_size:
        return "factored"
    if stored == param_size:
        return "one per parameter"
    if stored >= out_size * param_size:
        return "dense"
    return "block"


def trace_table(model: Cell, x, policy: Policy) -> tuple[list, int]:
    """The memory of `policy`'s eligibility traces on `model`, per sample, trace by trace (what
    ``snnplast inspect`` prints).

    **Arguments:**

    - `model`: a :class:`snnplast.Cell`.
    - `x`: one step's input (shape and dtype matter, not the values).
    - `policy`: a transport policy.

    **Returns:** ``(rows, total bytes)``; each row is ``(state, parameter, class, stored shape,
    bytes, dense bytes)``, named by the model's state leaves and parameters; the class is
    ``factored`` (fewer numbers than parameters), ``one per parameter``, ``block`` or ``dense``.
    """

    runner = OnlineStep(model, x, policy, lambda o, y: jnp.sum(o))
    itemsize = jnp.dtype(runner.dtype).itemsize
    # HeadSparse stores the selected heads only where it can (snnplast.gradients' default).
    gathered = GatheredHeadStep.build(runner)
    gathered_shapes = gathered.stored_shapes() if gathered is not None else {}
    rows, total = [], 0
    for (a, p), (ties, keys) in sorted(runner.traces.structure.items()):
        out_shape, in_shape = runner.traces.shapes[(a, p)]
        j = SJac(out_shape, in_shape, ties, None, keys, False)
        shape = gathered_shapes.get((a, p), tuple(j.key_size(k) for k in keys))
        stored = math.prod(shape)
        dense = math.prod(out_shape) * math.prod(in_shape)
        cls = _trace_class(stored, math.prod(out_shape), math.prod(in_shape))
        rows.append((runner.state_names[a], runner.param_names[p], cls, shape, stored * itemsize,
                     dense * itemsize))
        total += stored * itemsize
    return rows, total
