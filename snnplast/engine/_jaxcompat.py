"""The few places where the engine touches JAX internals, kept together: JAX moves its private
modules between releases, and one file is easier to keep working than many."""

from __future__ import annotations

from jax.extend import core as jex_core

ClosedJaxpr = jex_core.ClosedJaxpr
Jaxpr = jex_core.Jaxpr
Literal = jex_core.Literal
Var = jex_core.Var
jaxpr_as_fun = jex_core.jaxpr_as_fun


def bind(eqn_primitive, params, *args):
    """Apply a primitive to arguments with the params stored in a jaxpr equation."""
    out = eqn_primitive.bind(*args, **eqn_primitive.get_bind_params(params))
    return list(out) if eqn_primitive.multiple_results else [out]


# Call-like primitives whose body is another jaxpr that the engine inlines.
CALL_PRIMITIVES = ("pjit", "jit", "closed_call", "core_call", "remat", "remat2", "checkpoint",
                   "custom_lin", "name")
CUSTOM_JVP = ("custom_jvp_call", "custom_jvp_call_jaxpr")


def sub_jaxpr(params):
    """The (jaxpr, consts) of a call-like equation's body."""
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        if key in params:
            j = params[key]
            if isinstance(j, ClosedJaxpr):
                return j.jaxpr, list(j.consts)
            return j, []
    raise KeyError("no sub-jaxpr in params")


def source_line(eqn) -> str:
    """``file:line (function)`` of the user's code that made `eqn`, or ``""``."""
    try:
        from jax._src import source_info_util

        return source_info_util.summarize(eqn.source_info)
    except (ImportError, AttributeError, TypeError):  # a private module: if it moves, the
        # location is lost, never the error that asked for it
        return ""


def sub_jaxprs(params):
    """Every jaxpr among an equation's params (a body, a cond's branches), as plain jaxprs."""
    for value in params.values():
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, ClosedJaxpr):
                yield v.jaxpr
            elif isinstance(v, Jaxpr):
                yield v
