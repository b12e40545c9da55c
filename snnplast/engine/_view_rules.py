"""Jacobian rules, in refined views, of the ops that regroup dims: reshape, split, slice and
concatenate.

Each entry of :data:`VIEW_RULES` pairs a *constraint* (what the op asks of the views of its input
and output, see :mod:`._views`) with a *rule* that, once the views are fixed, returns the op's
Jacobians in them: a reshape becomes ties between equal sub-dims; a selection becomes ties on the
inner sub-dims and a constant 0/1 block (with its pattern) on the outer ones. An op whose
constraint is not accepted falls back to its ordinary rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from ._sjac import SJac
from ._views import Select, reshape_constraint, select_constraint, split_view


def _flat(view) -> tuple[int, ...]:
    return tuple(s for v in view for s in v)


def _starts(view) -> list[int]:
    return [sum(len(v) for v in view[:d]) for d in range(len(view))]


def _selection_sjac(out_view, in_view, selected: dict, big_is_in: bool, dtype) -> SJac:
    """Identity on the dims not in ``selected``; for each ``d -> (offset, s)`` in ``selected``,
    ties on the sub-dims below stride ``s`` and a 0/1 selection on the sub-dims above it: the
    smaller side's outer index ``a`` meets the bigger side's ``a + offset / s``."""
    o_start, i_start = _starts(out_view), _starts(in_view)
    ties, keys, val = set(), [], np.ones((), np.dtype(dtype))
    for d in range(len(out_view)):
        if d not in selected:
            if out_view[d] != in_view[d]:
                raise ValueError(f"unselected dim {d} viewed as {out_view[d]} and {in_view[d]}")
            ties.update((o_start[d] + k, i_start[d] + k) for k in range(len(out_view[d])))
            continue
        offset, s = selected[d]
        k_out, k_in = split_view(out_view[d], s), split_view(in_view[d], s)
        if out_view[d][len(out_view[d]) - k_out:] != in_view[d][len(in_view[d]) - k_in:]:
            raise ValueError(f"inner sub-dims of {out_view[d]} and {in_view[d]} differ")
        n_outer_out = len(out_view[d]) - k_out
        n_outer_in = len(in_view[d]) - k_in
        ties.update((o_start[d] + n_outer_out + k, i_start[d] + n_outer_in + k)
                    for k in range(k_out))
        outer_out = out_view[d][:n_outer_out]
        outer_in = in_view[d][:n_outer_in]
        m_out, m_in = math.prod(outer_out), math.prod(outer_in)
        a_out = np.arange(m_out)[:, None]
        a_in = np.arange(m_in)[None, :]
        q = offset // s
        sel = (a_in == a_out + q) if big_is_in else (a_out == a_in + q)
        sel = sel.astype(np.dtype(dtype)).reshape(outer_out + outer_in)
        val = np.multiply.outer(val, sel)
        keys += [(o_start[d] + k, None) for k in range(n_outer_out)]
        keys += [(None, i_start[d] + k) for k in range(n_outer_in)]
    return SJac(_flat(out_view), _flat(in_view), frozenset(ties), val, tuple(keys), True,
                val != 0)


# ----- constraints: (eqn params, in shapes, out shapes, in ids, out ids) -> constraint | None ---
def _slice_constraint(params, in_shapes, out_shapes, in_ids, out_ids):
    strides = params.get("strides")
    if strides is not None and any(s != 1 for s in strides):
        return None
    dims = [(d, params["start_indices"][d], in_shapes[0][d], out_shapes[0][d])
            for d in range(len(in_shapes[0])) if in_shapes[0][d] != out_shapes[0][d]]
    return select_constraint(in_ids[0], out_ids[0], dims)


def _pieces(sizes):
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
    s = math.gcd(*sizes) if len(sizes) > 1 else sizes[0]
    return offsets, s


def _pieces_constraint(axis, sizes, big_id, piece_ids, n):
    """Pieces of sizes ``sizes`` laid end to end along ``axis`` of a value of extent ``n``."""
    _, s = _pieces(sizes)
    if s <= 1:
        return None
    return Select(tuple(((big_id, axis), (p, axis), n, m, s) for p, m in zip(piece_ids, sizes)))


def _split_constraint(params, in_shapes, out_shapes, in_ids, out_ids):
    axis = params["axis"]
    return _pieces_constraint(axis, [o[axis] for o in out_shapes], in_ids[0], out_ids,
                              in_shapes[0][axis])


def _concatenate_constraint(params, in_shapes, out_shapes, in_ids, out_ids):
    # The concatenation is the bigger side: each piece is a selection of it.
    axis = params["dimension"]
    return _pieces_constraint(axis, [i[axis] for i in in_shapes], out_ids[0], in_ids,
                              out_shapes[0][axis])


def _reshape_constraint(params, in_shapes, out_shapes, in_ids, out_ids):
    return reshape_constraint(in_ids[0], in_shapes[0], out_ids[0], out_shapes[0])


# ----- rules in refined views: (ctx, in_views, out_views) -> rows ---------------------------------
def _slice_rule(ctx, in_views, out_views):
    in_shape, out_shape = ctx.in_shapes[0], ctx.out_shapes[0]
    start = ctx.params["start_indices"]
    selected = {d: (start[d], math.gcd(in_shape[d], out_shape[d], start[d]))
                for d in range(len(in_shape)) if in_shape[d] != out_shape[d]}
    return [[_selection_sjac(out_views[0], in_views[0], selected, True, ctx.outvals[0].dtype)]]


def _split_rule(ctx, in_views, out_views):
    axis = ctx.params["axis"]
    sizes = [o[axis] for o in ctx.out_shapes]
    offsets, s = _pieces(sizes)
    return [[_selection_sjac(ov, in_views[0], {axis: (off, s)}, True, ctx.outvals[0].dtype)]
            for ov, off in zip(out_views, offsets)]


def _concatenate_rule(ctx, in_views, out_views):
    axis = ctx.params["dimension"]
    sizes = [i[axis] for i in ctx.in_shapes]
    offsets, s = _pieces(sizes)
    row = []
    for k, (iv, off) in enumerate(zip(in_views, offsets)):
        row.append(_selection_sjac(out_views[0], iv, {axis: (off, s)}, False,
                                   ctx.outvals[0].dtype) if ctx.wrt[k] else None)
    return [row]


def _reshape_rule(ctx, in_views, out_views):
    r_in, r_out = _flat(in_views[0]), _flat(out_views[0])
    a = [d for d, size in enumerate(r_in) if size != 1]
    b = [d for d, size in enumerate(r_out) if size != 1]
    if [r_in[d] for d in a] != [r_out[d] for d in b]:
        raise ValueError(f"reshape between views {r_in} and {r_out} that do not match")
    one = jnp.asarray(1.0, ctx.outvals[0].dtype)
    row = [SJac(r_out, r_in, frozenset(zip(b, a)), one, (), True)]
    return [row + [None] * (len(ctx.invals) - 1)]


VIEW_RULES: dict[str, tuple[Callable, Callable]] = {
    "slice": (_slice_constraint, _slice_rule),
    "split": (_split_constraint, _split_rule),
    "concatenate": (_concatenate_constraint, _concatenate_rule),
    "reshape": (_reshape_constraint, _reshape_rule),
}
