"""Jacobian rules: one per primitive, registered in families.

A rule receives a :class:`RuleContext` (the equation, the primal values of its inputs and
outputs, which inputs need a Jacobian, which are constant in time) and returns, for each output,
a list with one :class:`~._sjac.SJac` (or ``None`` for zero) per input.

A primitive without a rule is never answered with a silent zero: :func:`dense_fallback` computes
its Jacobian densely with JAX's own forward-mode AD, and :func:`rule_for` warns once.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _jaxcompat as jc
from ._dtype import is_float
from ._sjac import SJac, _squeeze_broadcast, dense, diagonal

Rule = Callable[["RuleContext"], list]


@dataclasses.dataclass
class RuleContext:
    primitive: Any
    params: dict
    invals: list
    outvals: list
    wrt: list[bool]
    static: list[bool]
    patterns: list

    @property
    def in_shapes(self):
        return [tuple(jnp.shape(v)) for v in self.invals]

    @property
    def out_shapes(self):
        return [tuple(jnp.shape(v)) for v in self.outvals]

    def bind(self, *args):
        return jc.bind(self.primitive, self.params, *args)


RULES: dict[str, Rule] = {}


def register_rule(primitive, rule: Rule) -> None:
    """Register (or replace) the Jacobian rule of ``primitive`` (a Primitive or its name)."""
    name = primitive if isinstance(primitive, str) else primitive.name
    RULES[name] = rule


_warned: set = set()
# What keeps the structure instead, for the constructs that reach the fallback most often.
_HINTS = {
    # Only a cond with an effect in a branch gets here (the others are flattened, _flatten.py).
    "cond": "; a branch has an effect (jax.debug.print, a callback, eqx.error_if), so the cond "
            "is kept whole rather than every branch run at every step",
    "while": "; a loop with a fixed count written in Python (unrolled) keeps the structure",
    "scan": "; a loop with a fixed count written in Python (unrolled) keeps the structure",
}


def rule_for(primitive, owner: str) -> Rule:
    name = primitive.name
    if name in RULES:
        return RULES[name]
    if (name, owner) not in _warned:
        _warned.add((name, owner))
        warnings.warn(
            f"snnplast: no Jacobian rule for primitive '{name}' in {owner}; using a dense "
            "Jacobian from JAX's forward-mode AD for it (correct, but not compressed)"
            + _HINTS.get(name, ""),
            stacklevel=4,
        )
    return dense_fallback


# ----- helpers --------------------------------------------------------------------------------
def _elementwise(out_shape, in_shape, d, const, pattern=None) -> SJac:
    """Jacobian of an elementwise op w.r.t. one operand: same shape, a scalar, or with dims of
    size 1 that broadcast."""
    d = jnp.asarray(d)
    if in_shape == out_shape:
        return diagonal(out_shape, d, const=const, pattern=pattern)
    if in_shape and len(in_shape) != len(out_shape):
        raise ValueError(f"elementwise operand of shape {in_shape} for output {out_shape}")
    nd = len(out_shape)
    tied = [k for k in range(nd) if in_shape and in_shape[k] == out_shape[k]]
    ties = frozenset((k, k) for k in tied)
    if d.ndim == 0:
        return SJac(out_shape, in_shape, ties, d, (), const)
    d = jnp.broadcast_to(d, out_shape)
    keys = tuple((k, k) if k in tied else (k, None) for k in range(nd))
    return _squeeze_broadcast(SJac(out_shape, in_shape, ties, d, keys, const))


def _per_operand(ctx: RuleContext, derivative, *, linear: bool = False) -> list:
    out_shape = ctx.out_shapes[0]
    row = []
    for k, needed in enumerate(ctx.wrt):
        if not needed:
            row.append(None)
            continue
        # A linear op's partials are numbers; otherwise they change when any operand does.
        const = linear or all(ctx.static)
        row.append(_elementwise(out_shape, ctx.in_shapes[k], derivative(ctx, k), const))
    return [row]


def _jvp_derivative(ctx: RuleContext, k: int):
    """d out / d operand k of an elementwise op, by one JVP with a tangent of ones."""

    def f(a):
        args = list(ctx.invals)
        args[k] = a
        return ctx.bind(*args)[0]

    x = ctx.invals[k]
    return jax.jvp(f, (x,), (jnp.ones_like(x),))[1]


def _constant(value):
    return lambda ctx, k: jnp.asarray(value, ctx.outvals[0].dtype)


def deflinear_scalar(name: str, coefficients) -> None:
    """Elementwise ops whose partials are fixed numbers (add: 1, 1; sub: 1, -1; neg: -1)."""
    register_rule(
        name, lambda ctx: _per_operand(ctx, lambda c, k: _constant(coefficients[k])(c, k),
                                       linear=True))


def def_elementwise_jvp(name: str) -> None:
    """Elementwise ops whose partials come from one JVP per operand."""
    register_rule(name, lambda ctx: _per_operand(ctx, _jvp_derivative))


def _zero_rule(ctx: RuleContext):
    return [[None] * len(ctx.invals) for _ in ctx.outvals]


def def_zero(name: str) -> None:
    """Ops whose derivative is zero everywhere (comparisons, stop_gradient, integer ops)."""
    register_rule(name, _zero_rule)


def has_zero_derivative(primitive) -> bool:
    return RULES.get(primitive.name) is _zero_rule


def _mul_rule(ctx: RuleContext):
    a, b = ctx.invals
    out_shape = ctx.out_shapes[0]
    row = []
    for k, other in ((0, b), (1, a)):
        if not ctx.wrt[k]:
            row.append(None)
            continue
        pattern = ctx.patterns[1 - k]
        if pattern is not None and np.shape(other) != ctx.in_shapes[k]:
            pattern = None
        row.append(_elementwise(out_shape, ctx.in_shapes[k], other, ctx.static[1 - k], pattern))
    return [row]


def _div_rule(ctx: RuleContext):
    _, b = ctx.invals
    out = ctx.outvals[0]
    derivs = (lambda: 1.0 / b, lambda: -out / b)
    out_shape = ctx.out_shapes[0]
    row = []
    for k in (0, 1):
        if not ctx.wrt[k]:
            row.append(None)
            continue
        const = ctx.static[1] and (k == 0 or ctx.static[0])
        row.append(_elementwise(out_shape, ctx.in_shapes[k], derivs[k](), const))
    return [row]


def _convert_rule(ctx: RuleContext):
    if not is_float(ctx.outvals[0].dtype):
        return [[None]]
    return _per_operand(ctx, _constant(1.0), linear=True)


def _select_n_rule(ctx: RuleContext):
    pred = ctx.invals[0]
    out_shape = ctx.out_shapes[0]
    row = [None]
    for k in range(1, len(ctx.invals)):
        if not ctx.wrt[k]:
            row.append(None)
            continue
        d = (pred == (k - 1)) if pred.dtype != jnp.bool_ else (pred if k == 2 else ~pred)
        d = jnp.asarray(d, ctx.outvals[0].dtype)
        row.append(_elementwise(out_shape, ctx.in_shapes[k], d, ctx.static[0]))
    return [row]


def _dot_general_rule(ctx: RuleContext):
    (lc, rc), (lb, rb) = ctx.params["dimension_numbers"]
    lhs, rhs = ctx.invals
    out_shape = ctx.out_shapes[0]
    lnd, rnd = lhs.ndim, rhs.ndim
    lfree = [d for d in range(lnd) if d not in lc and d not in lb]
    rfree = [d for d in range(rnd) if d not in rc and d not in rb]
    nb = len(lb)
    # Output dims: batch, lhs free, rhs free.
    out_of_l = {d: nb + n for n, d in enumerate(lfree)}
    out_of_r = {d: nb + len(lfree) + n for n, d in enumerate(rfree)}
    row = [None, None]
    for k in (0, 1):
        if not ctx.wrt[k]:
            continue
        # d out / d (operand k) = the other operand, tied over batch and k's free dims.
        my_b, my_c, my_free_out = (lb, lc, out_of_l) if k == 0 else (rb, rc, out_of_r)
        ot_b, ot_c = (rb, rc) if k == 0 else (lb, lc)
        other_free_out = out_of_r if k == 0 else out_of_l
        other = rhs if k == 0 else lhs
        ties = set()
        for n, d in enumerate(my_b):
            ties.add((n, d))
        for d, o in my_free_out.items():
            ties.add((o, d))
        # The other operand's axes become classes: its batch dims are tied batch classes, its
        # contracting dims pair with my contracting dims (free input dims), its free dims are
        # free output dims.
        keys = []
        for d in range(other.ndim):
            if d in ot_b:
                n = list(ot_b).index(d)
                keys.append((n, my_b[n]))
            elif d in ot_c:
                keys.append((None, my_c[list(ot_c).index(d)]))
            else:
                keys.append((other_free_out[d], None))
        pattern = ctx.patterns[1 - k]
        row[k] = SJac(out_shape, ctx.in_shapes[k], frozenset(ties), other, tuple(keys),
                      ctx.static[1 - k], pattern)
    return [row]


def _reduce_sum_rule(ctx: RuleContext):
    axes = tuple(ctx.params["axes"])
    in_shape = ctx.in_shapes[0]
    kept = [d for d in range(len(in_shape)) if d not in axes]
    ties = frozenset((n, d) for n, d in enumerate(kept))
    one = jnp.asarray(1.0, ctx.outvals[0].dtype)
    return [[SJac(ctx.out_shapes[0], in_shape, ties, one, (), True)]]


def _reduce_extremum_rule(ctx: RuleContext):
    axes = tuple(ctx.params["axes"])
    x, out = ctx.invals[0], ctx.outvals[0]
    in_shape = ctx.in_shapes[0]
    kept = [d for d in range(len(in_shape)) if d not in axes]
    expanded = lax.expand_dims(out, axes)
    hit = jnp.asarray(x == expanded, x.dtype)
    # Ties share the derivative equally, as JAX's own rule does.
    d = hit / jnp.sum(hit, axis=axes, keepdims=True)
    ties = frozenset((n, d_) for n, d_ in enumerate(kept))
    keys = tuple((kept.index(a), a) if a in kept else (None, a) for a in range(len(in_shape)))
    return [[SJac(ctx.out_shapes[0], in_shape, ties, d, keys, ctx.static[0])]]


def _broadcast_in_dim_rule(ctx: RuleContext):
    in_shape, out_shape = ctx.in_shapes[0], ctx.out_shapes[0]
    bdims = ctx.params["broadcast_dimensions"]
    ties = frozenset((o, i) for i, o in enumerate(bdims) if in_shape[i] == out_shape[o])
    one = jnp.asarray(1.0, ctx.outvals[0].dtype)
    row = [SJac(out_shape, in_shape, ties, one, (), True)]
    return [row + [None] * (len(ctx.invals) - 1)]


def _transpose_rule(ctx: RuleContext):
    perm = ctx.params["permutation"]
    ties = frozenset((o, i) for o, i in enumerate(perm))
    one = jnp.asarray(1.0, ctx.outvals[0].dtype)
    return [[SJac(ctx.out_shapes[0], ctx.in_shapes[0], ties, one, (), True)]]


def _size_one_ties(in_shape, out_shape):
    """Ties for a reshape that only inserts or removes dims of size 1, else None."""
    a = [d for d in range(len(in_shape)) if in_shape[d] != 1]
    b = [d for d in range(len(out_shape)) if out_shape[d] != 1]
    if [in_shape[d] for d in a] != [out_shape[d] for d in b]:
        return None
    return frozenset(zip(b, a))


def _reshape_rule(ctx: RuleContext):
    in_shape, out_shape = ctx.in_shapes[0], ctx.out_shapes[0]
    dtype = ctx.outvals[0].dtype
    ties = _size_one_ties(in_shape, out_shape)
    if ties is not None:
        row = [SJac(out_shape, in_shape, ties, jnp.asarray(1.0, dtype), (), True)]
    else:
        # A general reshape regroups dims; stored as the permutation it is.
        n = math.prod(in_shape)
        eye = np.eye(n, dtype=np.dtype(dtype)).reshape(out_shape + in_shape)
        row = [dense(out_shape, in_shape, eye, const=True, pattern=eye != 0)]
    return [row + [None] * (len(ctx.invals) - 1)]


def _selection(out_size, in_size, offset, dtype, stride=1):
    """A constant 0/1 matrix: kept as numpy so its pattern is known at trace time."""
    o = np.arange(out_size)[:, None]
    i = np.arange(in_size)[None, :]
    return (i == offset + stride * o).astype(np.dtype(dtype))


def _axis_selection_sjac(out_shape, in_shape, axis, sel, const=True):
    """Identity on every dim but ``axis``, where ``sel`` [out, in] selects."""
    ties = frozenset((d, d) for d in range(len(in_shape)) if d != axis)
    keys = ((axis, None), (None, axis))
    return SJac(out_shape, in_shape, ties, sel, keys, const, np.asarray(sel) != 0)


def _slice_rule(ctx: RuleContext):
    in_shape, out_shape = ctx.in_shapes[0], ctx.out_shapes[0]
    start = ctx.params["start_indices"]
    strides = ctx.params.get("strides") or (1,) * len(in_shape)
    dtype = ctx.outvals[0].dtype
    changed = [d for d in range(len(in_shape)) if in_shape[d] != out_shape[d]]
    ties = frozenset((d, d) for d in range(len(in_shape)) if d not in changed)
    sels = [_selection(out_shape[d], in_shape[d], start[d], dtype, strides[d]) for d in changed]
    if not changed:
        return [[SJac(out_shape, in_shape, ties, jnp.asarray(1.0, dtype), (), True)]]
    val = sels[0]
    keys = [(changed[0], None), (None, changed[0])]
    for d, s in zip(changed[1:], sels[1:]):
        val = np.einsum("...,ab->...ab", val, s)
        keys += [(d, None), (None, d)]
    return [[SJac(out_shape, in_shape, ties, val, tuple(keys), True, np.asarray(val) != 0)]]


def _split_rule(ctx: RuleContext):
    axis = ctx.params["axis"]
    in_shape = ctx.in_shapes[0]
    dtype = ctx.outvals[0].dtype
    rows, offset = [], 0
    for out_shape in ctx.out_shapes:
        sel = _selection(out_shape[axis], in_shape[axis], offset, dtype)
        rows.append([_axis_selection_sjac(out_shape, in_shape, axis, sel)])
        offset += out_shape[axis]
    return rows


def _concatenate_rule(ctx: RuleContext):
    axis = ctx.params["dimension"]
    out_shape = ctx.out_shapes[0]
    dtype = ctx.outvals[0].dtype
    row, offset = [], 0
    for k, in_shape in enumerate(ctx.in_shapes):
        n = in_shape[axis]
        if ctx.wrt[k]:
            sel = _selection(n, out_shape[axis], offset, dtype).T
            row.append(_axis_selection_sjac(out_shape, in_shape, axis, sel))
        else:
            row.append(None)
        offset += n
    return [row]


def _squeeze_rule(ctx: RuleContext):
    in_shape, out_shape = ctx.in_shapes[0], ctx.out_shapes[0]
    ties = _size_one_ties(in_shape, out_shape)
    return [[SJac(out_shape, in_shape, ties, jnp.asarray(1.0, ctx.outvals[0].dtype), (), True)]]


def _dynamic_slice_rule(ctx: RuleContext):
    x = ctx.invals[0]
    starts = ctx.invals[1:]
    in_shape, out_shape = ctx.in_shapes[0], ctx.out_shapes[0]
    changed = [d for d in range(len(in_shape)) if in_shape[d] != out_shape[d]]
    ties = frozenset((d, d) for d in range(len(in_shape)) if d not in changed)
    val = jnp.asarray(1.0, x.dtype)
    keys = []
    for d in changed:
        # JAX clamps the start so the slice stays in bounds.
        s = jnp.clip(starts[d], 0, in_shape[d] - out_shape[d])
        # In the start's own integer type: an int64 index (x64) against int32 positions is a
        # promotion error under strict promotion.
        index = jnp.result_type(s)
        sel = jnp.asarray(jnp.arange(in_shape[d], dtype=index)[None, :]
                          == s + jnp.arange(out_shape[d], dtype=index)[:, None], x.dtype)
        val = jnp.einsum("...,ab->...ab", val, sel)
        keys += [(d, None), (None, d)]
    row = [SJac(out_shape, in_shape, ties, val, tuple(keys), all(ctx.static[1:]))]
    return [row + [None] * len(starts)]


def _forward_jacobian(ctx: RuleContext, k: int) -> list:
    """Each output's Jacobian w.r.t. input `k` by forward mode, the other floating inputs given
    explicit zero tangents: JAX's own JVP of ``custom_linear_solve`` (``jnp.linalg.solve``)
    fails on the symbolic zeros ``jax.jacfwd`` would pass for them."""
    x = ctx.invals[k]
    floats = [j for j, v in enumerate(ctx.invals) if is_float(jnp.result_type(v))]

    def g(*float_args):
        args = list(ctx.invals)
        for j, v in zip(floats, float_args):
            args[j] = v
        return ctx.bind(*args)

    def push(t):
        tangents = tuple(t if j == k else jnp.zeros_like(ctx.invals[j]) for j in floats)
        return jax.jvp(g, tuple(ctx.invals[j] for j in floats), tangents)[1]

    n = math.prod(jnp.shape(x))
    basis = jnp.eye(n, dtype=jnp.result_type(x)).reshape((n, *jnp.shape(x)))
    cols = jax.vmap(push)(basis)  # per output: [n, *out_shape]
    return [jnp.moveaxis(c, 0, -1).reshape(jnp.shape(c)[1:] + jnp.shape(x))
            if is_float(out.dtype) else None for c, out in zip(cols, ctx.outvals)]


def dense_fallback(ctx: RuleContext):
    """Dense Jacobians by JAX's own AD, for primitives with no structured rule."""
    rows = [[None] * len(ctx.invals) for _ in ctx.outvals]
    for k, needed in enumerate(ctx.wrt):
        if not needed:
            continue

        def f(a, k=k):
            args = list(ctx.invals)
            args[k] = a
            return ctx.bind(*args)

        try:
            jacs = _forward_jacobian(ctx, k)
        except TypeError:  # custom_vjp bodies support reverse mode only
            jacs = jax.jacrev(f)(ctx.invals[k])
        for n, (jac, out) in enumerate(zip(jacs, ctx.outvals)):
            if not is_float(out.dtype):
                continue
            rows[n][k] = dense(ctx.out_shapes[n], ctx.in_shapes[k], jac,
                               const=all(ctx.static))
    return rows


# ----- the registry, by family ------------------------------------------------------------------
LINEAR_SCALAR = {
    "add": (1.0, 1.0), "add_any": (1.0, 1.0), "sub": (1.0, -1.0), "neg": (-1.0,),
    "copy": (1.0,), "copy_p": (1.0,), "real": (1.0,), "reduce_precision": (1.0,),
    "optimization_barrier": (1.0,),
}
ELEMENTWISE = (
    "exp", "exp2", "log", "log1p", "expm1", "tanh", "logistic", "sin", "cos", "tan", "asin",
    "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "sqrt", "rsqrt", "cbrt", "abs",
    "integer_pow", "square", "erf", "erfc", "erf_inv", "lgamma", "digamma", "max", "min", "pow",
    "atan2", "rem", "clamp", "nextafter", "sign", "floor", "ceil", "round", "is_finite",
    "logaddexp",
)
ZERO_DERIVATIVE = (
    "stop_gradient", "gt", "ge", "lt", "le", "eq", "ne", "and", "or", "not", "xor", "iota",
    "argmax", "argmin", "random_bits", "random_seed", "random_wrap", "random_unwrap",
    "shift_left", "shift_right_logical", "shift_right_arithmetic", "population_count",
)
for _name, _coefs in LINEAR_SCALAR.items():
    deflinear_scalar(_name, _coefs)
for _name in ELEMENTWISE:
    def_elementwise_jvp(_name)
for _name in ZERO_DERIVATIVE:
    def_zero(_name)

register_rule("mul", _mul_rule)
register_rule("div", _div_rule)
register_rule("convert_element_type", _convert_rule)
register_rule("select_n", _select_n_rule)
register_rule("dot_general", _dot_general_rule)
register_rule("reduce_sum", _reduce_sum_rule)
register_rule("reduce_max", _reduce_extremum_rule)
register_rule("reduce_min", _reduce_extremum_rule)
register_rule("broadcast_in_dim", _broadcast_in_dim_rule)
register_rule("transpose", _transpose_rule)
register_rule("reshape", _reshape_rule)
register_rule("squeeze", _squeeze_rule)
register_rule("expand_dims", _squeeze_rule)
register_rule("slice", _slice_rule)
register_rule("split", _split_rule)
register_rule("concatenate", _concatenate_rule)
register_rule("dynamic_slice", _dynamic_slice_rule)
