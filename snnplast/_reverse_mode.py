"""A step that JAX cannot differentiate in reverse mode, named in one line.

Every gradient method needs reverse mode through one step at least (BPTT and TruncatedBPTT
through the sequence, the online methods for each step's learning signal). JAX has none for a
``lax.while_loop`` (nor a ``lax.fori_loop`` whose bounds are not Python ints, which becomes
one) carrying values with a derivative. Its error, raised from deep inside a trace, says
nothing of which model or which loop: :func:`reverse_mode` turns it into a
:class:`~snnplast.ValidationError` naming both and what to write instead.
"""

from __future__ import annotations

import contextlib

import jax

from ._errors import ValidationError
from .engine import _jaxcompat as jc
from .engine._dtype import is_float

# The start of JAX's message (jax/_src/lax/control_flow/loops.py, _while_transpose_error).
_JAX_WHILE = "Reverse-mode differentiation does not work for lax.while_loop"


def _while_loops(jaxpr):
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "while":
            yield eqn
        for sub in jc.sub_jaxprs(eqn.params):
            yield from _while_loops(sub)


def _where(model, x) -> str:
    """`` at file:line (function)`` of the first loop in the step carrying a float, or ``""``."""
    try:
        closed = jax.make_jaxpr(lambda s, xx: model(s, xx))(model.initial_state(), x)
    except (TypeError, ValueError):  # the location is a courtesy; the error stands without it
        return ""
    loops = list(_while_loops(closed.jaxpr))
    floating = [e for e in loops if any(is_float(v.aval.dtype) for v in e.outvars)]
    line = jc.source_line((floating or loops)[0]) if loops else ""
    return f" at {line}" if line else ""


@contextlib.contextmanager
def reverse_mode(model, x):
    """Re-raise JAX's refusal to differentiate a ``while_loop`` as one line naming `model`'s
    loop (`x`: one step's input, traced only when the error comes)."""
    try:
        yield
    except ValueError as e:
        if isinstance(e, ValidationError) or not str(e).startswith(_JAX_WHILE):
            raise
        raise ValidationError(
            f"the step of {type(model).__name__} runs a lax.while_loop{_where(model, x)} (or a "
            "lax.fori_loop whose bounds are not Python ints) on values with a derivative, and JAX "
            "differentiates such a loop in forward mode only, while every gradient method needs "
            "reverse mode through the step: give fori_loop Python int bounds (it becomes a "
            "scan) or write the loop in Python") from e
