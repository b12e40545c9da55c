"""Jacobian rules of the ops that place values by position: stack, pad, rev, cumsum, and the
indexed reads and writes ``x[idx]`` (gather), ``x.at[idx].set / add`` (scatter) and
``lax.dynamic_update_slice``.

What users write to assemble or update part of a state (``jnp.stack([soma, dend], -1)``,
``u.at[:, 0].set(v)``) keeps the dims it does not index identity-tied, so a neuron's own
compartments stay per neuron instead of becoming one dense block.

Indexed ops share one construction (:func:`_tied_linear`): the dims an op leaves alone (a window
spanning a whole operand dim that no index addresses) are ties, and the Jacobian over the other
dims is that of the same op on operands cut to size 1 along the tied dims, by JAX's forward mode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._axis_rules import tied_jvp
from ._rules import RuleContext, _elementwise, _jvp_derivative, dense_fallback, register_rule
from ._sjac import SJac


def _stack_rule(ctx: RuleContext):
    axis = ctx.params["axis"]
    out_shape = ctx.out_shapes[0]
    dtype = np.dtype(ctx.outvals[0].dtype)
    row = []
    for k, in_shape in enumerate(ctx.in_shapes):
        if not ctx.wrt[k]:
            row.append(None)
            continue
        ties = frozenset((o, o if o < axis else o - 1) for o in range(len(out_shape))
                         if o != axis)
        onehot = (np.arange(out_shape[axis]) == k).astype(dtype)
        row.append(SJac(out_shape, in_shape, ties, onehot, ((axis, None),), True, onehot != 0))
    return [row]


def _per_dim_selection(out_shape, in_shape, sels: dict, dtype) -> SJac:
    """Identity on every dim but those in ``sels`` (``dim -> [out, in]`` 0/1 matrix)."""
    ties = frozenset((d, d) for d in range(len(in_shape)) if d not in sels)
    val, keys = np.ones((), dtype), []
    for d, s in sels.items():
        val = np.einsum("...,ab->...ab", val, s)
        keys += [(d, None), (None, d)]
    return SJac(out_shape, in_shape, ties, val, tuple(keys), True, val != 0)


def _pad_rule(ctx: RuleContext):
    in_shape, out_shape = ctx.in_shapes[0], ctx.out_shapes[0]
    dtype = np.dtype(ctx.outvals[0].dtype)
    sels = {}
    for d, (lo, _, interior) in enumerate(ctx.params["padding_config"]):
        if (lo, interior) == (0, 0) and in_shape[d] == out_shape[d]:
            continue
        o = np.arange(out_shape[d])[:, None]
        i = np.arange(in_shape[d])[None, :]
        sels[d] = (o == int(lo) + i * (int(interior) + 1)).astype(dtype)
    row = [_per_dim_selection(out_shape, in_shape, sels, dtype) if ctx.wrt[0] else None]
    # The padding value reaches every position no operand element lands on.
    row.append(_elementwise(out_shape, (), _jvp_derivative(ctx, 1), all(ctx.static))
               if ctx.wrt[1] else None)
    return [row]


def _rev_rule(ctx: RuleContext):
    shape = ctx.in_shapes[0]
    dtype = np.dtype(ctx.outvals[0].dtype)
    sels = {d: np.eye(shape[d], dtype=dtype)[::-1] for d in ctx.params["dimensions"]}
    return [[_per_dim_selection(shape, shape, sels, dtype)]]


def _cumsum_rule(ctx: RuleContext):
    shape = ctx.in_shapes[0]
    axis = ctx.params["axis"]
    dtype = np.dtype(ctx.outvals[0].dtype)
    n = shape[axis]
    tri = np.tril(np.ones((n, n), dtype))  # out[j] sums in[i <= j]
    if ctx.params.get("reverse"):
        tri = tri.T
    return [[_per_dim_selection(shape, shape, {axis: tri}, dtype)]]


# ----- indexed reads and writes ----------------------------------------------------------------
def _cut(x, dims):
    """`x` with each of `dims` cut to its first element (kept as a dim of size 1)."""
    for d in dims:
        x = lax.slice_in_dim(x, 0, 1, axis=d)
    return x


def _tied_linear(ctx: RuleContext, k: int, ties, cut_args, params=None) -> SJac:
    """Jacobian of output 0 w.r.t. input `k`, identity-tied on `ties` (``(out_dim, in_dim)``).

    `cut_args` are the op's inputs cut to size 1 along the tied dims; the value over the other
    dims is the Jacobian of the op on them (`params` replacing the op's where sizes change).
    """
    prim, params = ctx.primitive, params if params is not None else ctx.params
    out_shape, in_shape = ctx.out_shapes[0], ctx.in_shapes[k]

    def f(a):
        args = list(cut_args)
        args[k] = a
        return prim.bind(*args, **prim.get_bind_params(params))

    jac = jax.jacfwd(f)(cut_args[k])  # [cut out..., cut in...]
    tied_o = {o for o, _ in ties}
    tied_i = {i for _, i in ties}
    n_out = len(out_shape)
    keep = [o for o in range(n_out) if o not in tied_o]
    keep += [n_out + i for i in range(len(in_shape)) if i not in tied_i]
    drop = tuple(a for a in range(jac.ndim) if a not in keep)
    val = jnp.squeeze(jac, axis=drop) if drop else jac
    keys = tuple((o, None) for o in range(n_out) if o not in tied_o)
    keys += tuple((None, i) for i in range(len(in_shape)) if i not in tied_i)
    const = all(s for j, s in enumerate(ctx.static) if j != k)
    return SJac(out_shape, in_shape, frozenset(ties), val, keys, const)


def _batched_scatter_updates(ctx: RuleContext, dn) -> SJac:
    """d out / d updates of a scatter with batch dims (``jax.vmap`` of ``u.at[k].set``)."""
    operand, _, updates = ctx.invals
    scatter_dims = [d for d in range(updates.ndim) if d not in dn.update_window_dims]
    ties = [(o, scatter_dims[i])
            for o, i in zip(dn.operand_batching_dims, dn.scatter_indices_batching_dims)]
    window = [d for d in range(operand.ndim)
              if d not in dn.inserted_window_dims and d not in dn.operand_batching_dims]
    ties += [(d, u) for d, u in zip(window, dn.update_window_dims)
             if updates.shape[u] == operand.shape[d]
             and d not in dn.scatter_dims_to_operand_dims]
    return tied_jvp(ctx, 2, ties)


def _scatter_rule(ctx: RuleContext):
    dn = ctx.params["dimension_numbers"]
    operand, indices, updates = ctx.invals
    if ctx.primitive.name not in _SCATTER_LINEAR:
        return dense_fallback(ctx)
    if getattr(dn, "operand_batching_dims", ()):
        row = [None, None, None]
        if ctx.wrt[0]:
            row[0] = _elementwise(ctx.out_shapes[0], ctx.in_shapes[0],
                                  _jvp_derivative(ctx, 0), all(ctx.static[1:]))
        if ctx.wrt[2]:
            row[2] = _batched_scatter_updates(ctx, dn)
        return [row]
    row = [None, None, None]
    if ctx.wrt[0]:
        # set: 1 where no update lands, 0 where one does; add: 1 everywhere.
        row[0] = _elementwise(ctx.out_shapes[0], ctx.in_shapes[0], _jvp_derivative(ctx, 0),
                              all(ctx.static[1:]))
    if ctx.wrt[2]:
        window = [d for d in range(operand.ndim) if d not in dn.inserted_window_dims]
        ties = [(d, u) for d, u in zip(window, dn.update_window_dims)
                if updates.shape[u] == operand.shape[d]
                and d not in dn.scatter_dims_to_operand_dims]
        cut = [_cut(operand, [d for d, _ in ties]), indices, _cut(updates, [u for _, u in ties])]
        row[2] = _tied_linear(ctx, 2, ties, cut)
    return [row]


def _gather_rule(ctx: RuleContext):
    dn = ctx.params["dimension_numbers"]
    operand, indices = ctx.invals
    sizes = tuple(ctx.params["slice_sizes"])
    if getattr(dn, "operand_batching_dims", ()):
        # jax.vmap of ``u[k]`` and jnp.take_along_axis: each batch reads its own slice.
        batch_out = [o for o in range(len(ctx.out_shapes[0])) if o not in dn.offset_dims]
        ties = [(batch_out[i], d)
                for d, i in zip(dn.operand_batching_dims, dn.start_indices_batching_dims)]
        window = [d for d in range(operand.ndim)
                  if d not in dn.collapsed_slice_dims and d not in dn.operand_batching_dims]
        ties += [(o, d) for o, d in zip(dn.offset_dims, window)
                 if sizes[d] == operand.shape[d] and d not in dn.start_index_map]
        return [[tied_jvp(ctx, 0, ties), None]]
    window = [d for d in range(operand.ndim) if d not in dn.collapsed_slice_dims]
    ties = [(o, d) for o, d in zip(dn.offset_dims, window)
            if sizes[d] == operand.shape[d] and d not in dn.start_index_map]
    tied = {d for _, d in ties}
    params = dict(ctx.params, slice_sizes=tuple(1 if d in tied else s
                                                for d, s in enumerate(sizes)))
    cut = [_cut(operand, sorted(tied)), indices]
    return [[_tied_linear(ctx, 0, ties, cut, params), None]]


def _dynamic_update_slice_rule(ctx: RuleContext):
    operand, update, *starts = ctx.invals
    row = [None] * len(ctx.invals)
    if ctx.wrt[0]:
        row[0] = _elementwise(ctx.out_shapes[0], ctx.in_shapes[0], _jvp_derivative(ctx, 0),
                              all(ctx.static[1:]))
    if ctx.wrt[1]:
        # A dim the update spans whole starts at 0 (JAX clamps the start): identity there.
        ties = [(d, d) for d in range(operand.ndim) if update.shape[d] == operand.shape[d]]
        dims = [d for d, _ in ties]
        row[1] = _tied_linear(ctx, 1, ties, [_cut(operand, dims), _cut(update, dims), *starts])
    return [row]


_SCATTER_LINEAR = ("scatter", "scatter-add", "scatter_add")

register_rule("stack", _stack_rule)
register_rule("pad", _pad_rule)
register_rule("rev", _rev_rule)
register_rule("cumsum", _cumsum_rule)
register_rule("gather", _gather_rule)
register_rule("dynamic_update_slice", _dynamic_update_slice_rule)
for _name in _SCATTER_LINEAR:
    register_rule(_name, _scatter_rule)
