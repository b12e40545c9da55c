"""Jacobian rules of the ops that work slice by slice along one axis: cumulative products and
extrema (``jnp.cumprod``, ``lax.cummax``, ``lax.cumlogsumexp``), ``sort`` (and ``argsort``, a
sort with an index operand), and reductions other than a sum (``jnp.prod``).

Each output slice along the op's axis depends only on the matching input slice, so every other
dim is an identity tie: a ``[n, 2]`` state sorted or multiplied along its compartments stays per
neuron, and only the axis itself is a small dense block per slice (by JAX's forward mode on one
slice, vmapped over the rest). Without these rules the ops were dense fallbacks over all dims.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._dtype import is_float
from ._rules import RuleContext, register_rule
from ._sjac import SJac


def _slice_jacobian(ctx: RuleContext, axis: int, n: int, k: int) -> SJac:
    """d output `n` / d input `k`, identity-tied on every dim but `axis` (all operands and
    outputs share one shape)."""
    shape = ctx.out_shapes[n]
    length = shape[axis]
    one = tuple(length if d == axis else 1 for d in range(len(shape)))

    def per_slice(*rows):
        args = [r.reshape(one) for r in rows]

        def f(a):
            a_args = list(args)
            a_args[k] = a
            return ctx.bind(*a_args)[n].reshape(length)

        return jax.jacfwd(f)(args[k]).reshape(length, length)

    rows = [jnp.moveaxis(v, axis, -1).reshape(-1, length) for v in ctx.invals]
    jac = jax.vmap(per_slice)(*rows)  # [slices, out along axis, in along axis]
    others = [d for d in range(len(shape)) if d != axis]
    val = jac.reshape(tuple(shape[d] for d in others) + (length, length))
    keys = tuple((d, d) for d in others) + ((axis, None), (None, axis))
    ties = frozenset((d, d) for d in others)
    return SJac(shape, ctx.in_shapes[k], ties, val, keys, all(ctx.static))


def _along(axis_param: str):
    def rule(ctx: RuleContext):
        axis = ctx.params[axis_param]
        rows = []
        for n, out in enumerate(ctx.outvals):
            row = []
            for k, needed in enumerate(ctx.wrt):
                if needed and is_float(out.dtype) and is_float(ctx.invals[k].dtype):
                    row.append(_slice_jacobian(ctx, axis, n, k))
                else:
                    row.append(None)
            rows.append(row)
        return rows

    return rule


def _reduction_rule(ctx: RuleContext):
    """A reduction over ``axes``: each output element depends only on its own reduced slice,
    so ``d out / d x`` has one number per input element: the gradient of the outputs' sum (one
    VJP, JAX's own conventions at ties and zeros)."""
    axes = tuple(ctx.params["axes"])
    x, out = ctx.invals[0], ctx.outvals[0]
    in_shape = ctx.in_shapes[0]
    if math.prod(in_shape) == 0:
        return [[None]]
    _, pullback = jax.vjp(lambda a: ctx.bind(a)[0], x)
    d = pullback(jnp.ones_like(out))[0]
    kept = [a for a in range(len(in_shape)) if a not in axes]
    ties = frozenset((n, a) for n, a in enumerate(kept))
    keys = tuple((kept.index(a), a) if a in kept else (None, a) for a in range(len(in_shape)))
    return [[SJac(ctx.out_shapes[0], in_shape, ties, d, keys, ctx.static[0])]]


for _name in ("cumprod", "cummax", "cummin", "cumlogsumexp"):
    register_rule(_name, _along("axis"))
register_rule("sort", _along("dimension"))
register_rule("reduce_prod", _reduction_rule)
