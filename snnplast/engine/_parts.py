"""Parts of a structured Jacobian: the entries a transport policy keeps of a block or a trace
(its neuron-local diagonal, the part on one tie, the columns of a mask), and the tie a
structural pattern proves."""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from ._sjac import Abstract, SJac, compose, diagonal, is_abstract, materialize, materialize_pattern


def diagonal_part(j: SJac) -> SJac | None:
    """The neuron-local part of a block between two leaves of one shape: entries with equal
    output and input index. ``None`` when that part is structurally zero."""
    if j.out_shape != j.in_shape:
        return None
    nd = len(j.out_shape)
    full = frozenset((k, k) for k in range(nd))
    if j.ties == full:
        return j
    if j.pattern is not None:
        m = np.asarray(materialize_pattern(j))
        flat = m.reshape(math.prod(j.out_shape), math.prod(j.in_shape))
        if not np.any(np.diagonal(flat)):
            return None
    dense_val = materialize(j)
    n = math.prod(j.out_shape)
    d = jnp.diagonal(dense_val.reshape(n, n)).reshape(j.out_shape)
    return diagonal(j.out_shape, d, const=j.const)


def restrict_in(j: SJac, mask) -> SJac:
    """``j`` with its input scaled elementwise by ``mask`` (of ``j.in_shape``): keeps the
    columns where ``mask`` is non-zero."""
    return compose(j, diagonal(j.in_shape, mask, const=False))


def tie_part(j: SJac, o: int, i: int) -> SJac | None:
    """The part of ``j`` on which output dim ``o`` equals input dim ``i`` (a new tie)."""
    if (o, i) in j.ties:
        return j
    if j.out_shape[o] != j.in_shape[i] or any(t[0] == o or t[1] == i for t in j.ties):
        return None
    keys = list(j.val_keys)
    ko, ki = (o, None), (None, i)
    if is_abstract(j.val):
        new_keys = [k for k in keys if k not in (ko, ki)] + [(o, i)]
        val = Abstract(tuple(j.key_size(k) if k != (o, i) else j.out_shape[o] for k in new_keys))
        return SJac(j.out_shape, j.in_shape, j.ties | {(o, i)}, val, tuple(new_keys), j.const)
    val = j.val
    if ko in keys and ki in keys:
        a, b = keys.index(ko), keys.index(ki)
        val = jnp.diagonal(val, axis1=a, axis2=b)  # the new axis goes last
        keys = [k for k in keys if k not in (ko, ki)] + [(o, i)]
    elif ko in keys:
        keys[keys.index(ko)] = (o, i)
    elif ki in keys:
        keys[keys.index(ki)] = (o, i)
    return SJac(j.out_shape, j.in_shape, j.ties | {(o, i)}, val, tuple(keys), j.const)


def sharpen(j: SJac) -> SJac:
    """Turn free dims that the pattern shows to be an identity into a tie.

    A product with a masked weight (the lateral mask of a columnar network with no lateral
    connections, say) can be dense in form but diagonal in fact; the pattern proves it.
    """
    if j.pattern is None or is_abstract(j.val):
        return j
    keys = list(j.val_keys)
    for o in range(len(j.out_shape)):
        if (o, None) not in keys:
            continue
        for i in range(len(j.in_shape)):
            if (None, i) not in keys or j.out_shape[o] != j.in_shape[i] or j.out_shape[o] == 1:
                continue
            a, b = keys.index((o, None)), keys.index((None, i))
            p = np.moveaxis(j.pattern, (a, b), (-2, -1))
            if not np.any(p & ~np.eye(j.out_shape[o], dtype=bool)):
                # tie_part keeps the other axes in order and puts the tie last, as here.
                diag = np.diagonal(p, axis1=-2, axis2=-1)
                return sharpen(dataclasses.replace(tie_part(j, o, i), pattern=diag))
    return j
