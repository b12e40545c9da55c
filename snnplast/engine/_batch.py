"""Batched products of structured Jacobians: a learning signal contracted with a batch of
traces in one einsum, without a per-sample outer product."""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from ._sjac import LETTERS, Abstract, SJac, materialize, plan_compose


def contract_batch(row_vals, g: SJac):
    """``sum_batch row_b @ G_b`` for row vectors ``row_vals [B, *g.out_shape]`` and a batched
    trace ``g`` (``val [B, ...]``): one einsum over the batch, never a per-sample outer product.

    **Returns:** an array of shape ``g.in_shape``.
    """
    out_shape = g.out_shape
    row = SJac((), out_shape, frozenset(), Abstract(out_shape),
               tuple((None, i) for i in range(len(out_shape))), False)
    g_struct = dataclasses.replace(g, val=Abstract(tuple(np.shape(g.val))[1:]))
    group_of, groups, used = plan_compose(row, g_struct)
    letter = {gr: LETTERS[n] for n, gr in enumerate(sorted(set(group_of.values())))}
    batch = "Z"
    spec_a = batch + "".join(letter[group_of[("a", k)]] for k in row.val_keys)
    spec_b = batch + "".join(letter[group_of[("b", k)]] for k in g.val_keys)
    kept = [gr for gr in sorted(used) if groups[gr]["w"] is not None]
    spec_out = "".join(letter[gr] for gr in kept)
    val = jnp.einsum(f"{spec_a},{spec_b}->{spec_out}", row_vals, g.val)
    factor = math.prod(groups[gr]["size"] for gr in set(group_of.values()) - used
                       if groups[gr]["w"] is None)
    if factor != 1:
        val = val * factor
    keys = tuple((None, groups[gr]["w"]) for gr in kept)
    result = SJac((), g.in_shape, frozenset(), val, keys, False)
    return materialize(result)
