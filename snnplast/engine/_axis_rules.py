"""Jacobian rules of the ops that work slice by slice along one axis: cumulative products and
extrema (``jnp.cumprod``, ``lax.cummax``, ``lax.cumlogsumexp``), ``sort`` (and ``argsort``, a
sort with an index operand), reductions other than a sum (``jnp.prod``), and a triangular
solve (``jax.scipy.linalg.solve_triangular``, each column of its right-hand side on its own).

Each output slice along the op's axis depends only on the matching input slice, so every other
dim is an identity tie: a ``[n, 2]`` state sorted or multiplied along its compartments stays per
neuron, and only the axis itself is a small dense block per slice (by JAX's forward mode on one
slice, vmapped over the rest). Without these rules the ops were dense fallbacks over all dims.
:func:`tied_jvp` is the general form (any op known to work independently along some dims), which
the batched gathers and scatters of ``jax.vmap`` use too.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._dtype import is_float
from ._rules import RuleContext, _forward_jacobian, register_rule
from ._sjac import SJac, dense


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


def tied_jvp(ctx: RuleContext, k: int, ties) -> SJac:
    """Jacobian of output 0 w.r.t. input `k` where the op works independently along the tied
    dims (``(out_dim, in_dim)``: the batch dims of a vmapped ``u[k]`` or ``u.at[k].set``) and
    its values may differ from one slice to the next: one JVP per element of the untied input
    dims, with a tangent that is 1 there in every slice at once."""
    x, in_shape, out_shape = ctx.invals[k], ctx.in_shapes[k], ctx.out_shapes[0]
    tied_o = dict(ties)
    tied_i = sorted(tied_o.values())
    free = [i for i in range(len(in_shape)) if i not in tied_i]
    free_shape = tuple(in_shape[i] for i in free)

    def push(e):
        args = list(ctx.invals)

        def f(a):
            args[k] = a
            return ctx.bind(*args)[0]

        tangent = jnp.broadcast_to(jnp.expand_dims(e, tuple(tied_i)), in_shape)
        return jax.jvp(f, (x,), (tangent,))[1]

    m = math.prod(free_shape)
    basis = jnp.eye(m, dtype=x.dtype).reshape((m, *free_shape))
    jac = jnp.moveaxis(jax.vmap(push)(basis), 0, -1).reshape(out_shape + free_shape)
    keys = tuple((o, tied_o[o]) if o in tied_o else (o, None) for o in range(len(out_shape)))
    keys += tuple((None, i) for i in free)
    const = all(s for j, s in enumerate(ctx.static) if j != k)
    return SJac(out_shape, in_shape, frozenset(ties), jac, keys, const)


def _triangular_solve_rule(ctx: RuleContext):
    """``lax.linalg.triangular_solve(a, b)``: each column of ``b`` (each row, with
    ``left_side=False``) and each batch is solved on its own, so those dims of ``b`` are ties;
    ``a`` (a small learnable coupling, usually) is dense."""
    b_shape = ctx.in_shapes[1]
    nd = len(b_shape)
    row = [None, None]
    if ctx.wrt[0]:
        row[0] = dense(ctx.out_shapes[0], ctx.in_shapes[0], _forward_jacobian(ctx, 0)[0],
                       const=all(ctx.static))
    if ctx.wrt[1]:
        solo = nd - 1 if ctx.params["left_side"] else nd - 2
        ties = [(d, d) for d in range(nd - 2)] + [(solo, solo)]
        row[1] = tied_jvp(ctx, 1, ties)
    return [row]


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
register_rule("triangular_solve", _triangular_solve_rule)
