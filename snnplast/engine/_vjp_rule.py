"""The Jacobian rule of ``jax.custom_vjp`` functions (a surrogate spike written the way
snnTorch-style code writes it: a forward pass and a hand-written backward pass).

A custom VJP gives only reverse-mode products, so its structure is read from what it computes:
when the forward and backward passes, traced together, are made of position-wise operations
alone (elementwise math, comparisons, selects, scalars broadcast) over arrays of the input's
shape, each cotangent element depends only on the same element of the output's cotangent, and
the Jacobian is diagonal: ``vjp(ones)``. Anything else is differentiated densely with the user's
backward pass, with one warning.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

from . import _jaxcompat as jc
from ._rules import (
    ELEMENTWISE,
    LINEAR_SCALAR,
    RuleContext,
    _elementwise,
    dense_fallback,
    register_rule,
)

# Operations whose output at a position depends on their operands at that position only.
POSITIONWISE = frozenset(ELEMENTWISE) | frozenset(LINEAR_SCALAR) | {
    "mul", "div", "max", "min", "select_n", "convert_element_type", "broadcast_in_dim",
    "stop_gradient", "gt", "ge", "lt", "le", "eq", "ne", "and", "or", "not", "xor",
}


def _sub_jaxprs(params):
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        if key in params:
            j = params[key]
            yield j.jaxpr if isinstance(j, jc.ClosedJaxpr) else j


def _positionwise(jaxpr, shape) -> bool:
    """Whether every equation of `jaxpr` (call bodies included) is position-wise over arrays of
    `shape` (or scalars)."""
    for eqn in jaxpr.eqns:
        avals = [v.aval for v in (*eqn.invars, *eqn.outvars) if not isinstance(v, jc.Literal)]
        if any(tuple(a.shape) not in (tuple(shape), ()) for a in avals):
            return False
        subs = list(_sub_jaxprs(eqn.params))
        if subs:
            if not all(_positionwise(s, shape) for s in subs):
                return False
        elif eqn.primitive.name not in POSITIONWISE:
            return False
    return True


def _custom_vjp_rule(ctx: RuleContext):
    if len(ctx.outvals) != 1:
        return _dense(ctx)
    out_shape = ctx.out_shapes[0]

    def f(*args):
        return ctx.bind(*args)[0]

    def pullback(args, g):
        return jax.vjp(f, *args)[1](g)

    g = jnp.ones_like(ctx.outvals[0])
    traced = jax.make_jaxpr(pullback)(list(ctx.invals), g)
    if not _positionwise(traced.jaxpr, out_shape):
        return _dense(ctx)
    cts = pullback(list(ctx.invals), g)
    row = []
    for k, needed in enumerate(ctx.wrt):
        if not needed:
            row.append(None)
        elif ctx.in_shapes[k] != out_shape:  # a scalar operand: vjp(ones) sums over outputs
            row.append(dense_fallback(ctx)[0][k])
        else:
            row.append(_elementwise(out_shape, ctx.in_shapes[k], cts[k], all(ctx.static)))
    return [row]


_warned: set = set()


def _function_name(params) -> str:
    """The user's name for the custom_vjp function, where JAX kept it."""
    for j in _sub_jaxprs(params):
        name = getattr(getattr(j, "debug_info", None), "func_name", None)
        if name:
            return name
    return getattr(params.get("bwd"), "__name__", "custom_vjp")


def _dense(ctx: RuleContext):
    """JAX's own (dense) Jacobian through the user's backward pass, warned about once."""
    name = _function_name(ctx.params)
    if name not in _warned:
        _warned.add(name)
        warnings.warn(
            f"snnplast: the custom_vjp function '{name}' is not position-wise; its Jacobian is "
            "taken densely from its backward pass (correct, but not compressed). A custom_jvp "
            "(as snnplast.surrogates) gives the engine its structure", stacklevel=5)
    return dense_fallback(ctx)


register_rule("custom_vjp_call", _custom_vjp_rule)
register_rule("custom_vjp_call_jaxpr", _custom_vjp_rule)
