"""Structured Jacobians: the values the trace engine multiplies.

A Jacobian ``J`` of an output of shape ``V`` with respect to an input of shape ``U`` is stored as

    J[v, u] = val[classes] * prod_{(o, i) in ties} delta(v_o, u_i)

Every output dim ``o`` and every input dim ``i`` belongs to exactly one *class*: a tie ``(o, i)``
(an identity between the two dims), a free output dim ``(o, None)`` or a free input dim
``(None, i)``. ``val`` is an array over a subset of the classes (``val_keys``); along a class that
``val`` omits, the Jacobian is constant. So a diagonal is ``ties = all (k, k)`` with ``val`` over
them; a fixed leak is the same with a scalar ``val``; the Jacobian of ``W @ x`` with respect to
``W`` is ``ties = {(0, 0)}`` with ``val = x`` over the free input dim ``(None, 1)``: an array shaped
like ``x``, never like ``W``. Dense is no ties and ``val`` over every class.

Products and sums of these are computed on ``val`` with one ``einsum``; identities are never
materialised unless a sum of two different structures forces it.

``pattern`` optionally records which entries of ``val`` are structurally non-zero (a numpy bool
array known at trace time, e.g. a weight masked by a constant). ``const`` records that ``val``
does not change from one time step to the next.
"""

from __future__ import annotations

import dataclasses
import math
import string

import jax
import jax.numpy as jnp
import numpy as np

Key = tuple  # (out_dim | None, in_dim | None)


@dataclasses.dataclass(frozen=True)
class Abstract:
    """A stand-in for ``val`` when only the structure is wanted (planning an elimination)."""

    shape: tuple[int, ...]
    dtype: object = np.float32

    @property
    def ndim(self) -> int:
        return len(self.shape)


def abstract(j: SJac) -> SJac:
    return dataclasses.replace(j, val=Abstract(tuple(np.shape(j.val)), j.val.dtype))


def is_abstract(*vals) -> bool:
    return any(isinstance(v, Abstract) for v in vals)


@dataclasses.dataclass(frozen=True)
class SJac:
    out_shape: tuple[int, ...]
    in_shape: tuple[int, ...]
    ties: frozenset  # of (out_dim, in_dim)
    val: object  # jax/numpy array with axes ordered as val_keys
    val_keys: tuple[Key, ...]
    const: bool = False
    pattern: np.ndarray | None = None

    # ----- structure -------------------------------------------------------------------------
    def key_size(self, key: Key) -> int:
        o, i = key
        return self.out_shape[o] if o is not None else self.in_shape[i]

    def classes(self) -> list[Key]:
        tied_o = {o for o, _ in self.ties}
        tied_i = {i for _, i in self.ties}
        keys = sorted(self.ties)
        keys += [(o, None) for o in range(len(self.out_shape)) if o not in tied_o]
        keys += [(None, i) for i in range(len(self.in_shape)) if i not in tied_i]
        return keys

    def class_of_out(self, o: int) -> Key:
        for t in self.ties:
            if t[0] == o:
                return t
        return (o, None)

    def class_of_in(self, i: int) -> Key:
        for t in self.ties:
            if t[1] == i:
                return t
        return (None, i)

    @property
    def stored_size(self) -> int:
        """Number of floats kept for this Jacobian (the size of ``val``)."""
        return int(math.prod(self.key_size(k) for k in self.val_keys))

    def __repr__(self):
        return (
            f"SJac(out={self.out_shape}, in={self.in_shape}, ties={sorted(self.ties)}, "
            f"val_keys={list(self.val_keys)}, const={self.const})"
        )


def diagonal(shape: tuple[int, ...], d, *, const: bool, pattern=None) -> SJac:
    """Elementwise Jacobian ``diag(d)`` with ``d`` of ``shape`` or broadcastable to it."""
    d = jnp.asarray(d)
    nd = len(shape)
    if d.ndim < nd:
        d = d.reshape((1,) * (nd - d.ndim) + d.shape)
    keys = [(k, k) for k in range(nd)]
    return _squeeze_broadcast(
        SJac(tuple(shape), tuple(shape), frozenset(keys), d, tuple(keys), const, pattern)
    )


def dense(out_shape, in_shape, m, *, const: bool, pattern=None) -> SJac:
    out_shape, in_shape = tuple(out_shape), tuple(in_shape)
    keys = tuple((o, None) for o in range(len(out_shape))) + tuple(
        (None, i) for i in range(len(in_shape))
    )
    return SJac(out_shape, in_shape, frozenset(), m, keys, const, pattern)


def _squeeze_broadcast(j: SJac) -> SJac:
    """Drop val axes of size 1 that stand for classes of size > 1 (a broadcast)."""
    val, keys, pat = j.val, list(j.val_keys), j.pattern
    drop = [ax for ax, k in enumerate(keys) if val.shape[ax] == 1 and j.key_size(k) != 1]
    if not drop:
        return j
    val = jnp.squeeze(val, axis=tuple(drop))
    if pat is not None:
        pat = np.squeeze(pat, axis=tuple(drop))
    keys = [k for ax, k in enumerate(keys) if ax not in drop]
    return dataclasses.replace(j, val=val, val_keys=tuple(keys), pattern=pat)


# ----- algebra -------------------------------------------------------------------------------
LETTERS = string.ascii_letters


def _einsum_pattern(spec_in, patterns, shapes, spec_out):
    mats = [
        (np.ones(s, np.int64) if p is None else p.astype(np.int64)) for p, s in zip(patterns, shapes)
    ]
    return np.einsum(",".join(spec_in) + "->" + spec_out, *mats) > 0


def plan_compose(a: SJac, b: SJac):
    """Group the classes of ``a`` and ``b`` that meet at a dim of their shared shape U.

    Each group then has at most one output dim (of ``a``) and one input dim (of ``b``): a class
    never spans two dims on one side.
    """
    if a.in_shape != b.out_shape:
        raise ValueError(f"cannot compose Jacobians: {a.in_shape} != {b.out_shape}")
    group_of: dict = {}
    groups: list[dict] = []
    for ka in a.classes():
        group_of[("a", ka)] = len(groups)
        groups.append({"v": ka[0], "w": None, "size": a.key_size(ka)})
    for kb in b.classes():
        if kb[0] is not None:
            g = group_of[("a", a.class_of_in(kb[0]))]
        else:
            g = len(groups)
            groups.append({"v": None, "w": None, "size": b.key_size(kb)})
        group_of[("b", kb)] = g
        groups[g]["w"] = kb[1]
    used = {group_of[("a", k)] for k in a.val_keys} | {group_of[("b", k)] for k in b.val_keys}
    return group_of, groups, used


def compose_cost(a: SJac, b: SJac) -> int:
    """Multiplications of ``compose(a, b)``, from the structure alone."""
    _, groups, used = plan_compose(a, b)
    return int(math.prod(groups[g]["size"] for g in used)) if used else 1


def compose(a: SJac, b: SJac) -> SJac:
    """``a @ b`` for ``a: V <- U`` and ``b: U <- W``."""
    group_of, groups, used = plan_compose(a, b)
    letter = {g: LETTERS[n] for n, g in enumerate(sorted(set(group_of.values())))}
    spec_a = "".join(letter[group_of[("a", k)]] for k in a.val_keys)
    spec_b = "".join(letter[group_of[("b", k)]] for k in b.val_keys)
    kept = [g for g in sorted(used) if groups[g]["v"] is not None or groups[g]["w"] is not None]
    spec_out = "".join(letter[g] for g in kept)
    if is_abstract(a.val, b.val):
        val = Abstract(tuple(groups[g]["size"] for g in kept))
    else:
        val = jnp.einsum(f"{spec_a},{spec_b}->{spec_out}", a.val, b.val)
    # A summed dim along which neither factor varies contributes its size.
    all_groups = set(group_of.values())
    factor = math.prod(
        groups[g]["size"]
        for g in all_groups - used
        if groups[g]["v"] is None and groups[g]["w"] is None
    )
    if factor != 1 and not is_abstract(val):
        val = val * factor
    pattern = None
    if a.pattern is not None or b.pattern is not None:
        pattern = _einsum_pattern(
            [spec_a, spec_b], [a.pattern, b.pattern], [np.shape(a.val), np.shape(b.val)], spec_out
        )
    ties = frozenset(
        (groups[g]["v"], groups[g]["w"])
        for g in all_groups
        if groups[g]["v"] is not None and groups[g]["w"] is not None
    )
    keys = tuple((groups[g]["v"], groups[g]["w"]) for g in kept)
    return SJac(a.out_shape, b.in_shape, ties, val, keys, a.const and b.const, pattern)


def untie(j: SJac, tie) -> SJac:
    """Replace the identity of ``tie`` by an explicit eye in ``val``."""
    o, i = tie
    size = j.out_shape[o]
    keys = list(j.val_keys)
    pat = j.pattern
    if is_abstract(j.val):
        keys = [k for k in keys if k != tie] + [(o, None), (None, i)]
        val = Abstract(tuple(j.key_size(k) if k != (None, i) else j.in_shape[i] for k in keys))
        return SJac(j.out_shape, j.in_shape, j.ties - {tie}, val, tuple(keys), j.const, None)
    eye = jnp.eye(size, dtype=j.val.dtype)
    # The identity is structural knowledge: it survives as a pattern once it is materialised.
    if pat is None:
        pat = np.ones(np.shape(j.val), bool)
    if tie in keys:
        ax = keys.index(tie)
        val = jnp.moveaxis(j.val, ax, -1)[..., :, None] * eye
        keys = keys[:ax] + keys[ax + 1 :]
        pat = np.moveaxis(pat, ax, -1)[..., :, None] & np.eye(size, dtype=bool)
    else:
        val = j.val[..., None, None] * eye
        pat = pat[..., None, None] & np.eye(size, dtype=bool)
    keys += [(o, None), (None, i)]
    return SJac(j.out_shape, j.in_shape, j.ties - {tie}, val, tuple(keys), j.const, pat)


def expand_to(j: SJac, keys: tuple[Key, ...]) -> SJac:
    """Broadcast ``val`` so that its axes are exactly ``keys`` (a superset of ``val_keys``)."""
    keys = tuple(keys)
    if tuple(j.val_keys) == keys:
        return j
    if any(k not in keys for k in j.val_keys):
        raise ValueError(f"cannot expand val over {j.val_keys} to {keys}")
    shape = tuple(j.key_size(k) for k in keys)
    order = [keys.index(k) for k in j.val_keys]
    perm = tuple(int(p) for p in np.argsort(order))
    present = set(order)
    squeezed = tuple(shape[n] if n in present else 1 for n in range(len(keys)))
    if is_abstract(j.val):
        return dataclasses.replace(j, val=Abstract(shape), val_keys=keys, pattern=None)
    val = jnp.broadcast_to(jnp.reshape(jnp.transpose(j.val, perm), squeezed), shape)
    pat = None
    if j.pattern is not None:
        pat = np.broadcast_to(np.reshape(np.transpose(j.pattern, perm), squeezed), shape)
    return dataclasses.replace(j, val=val, val_keys=keys, pattern=pat)


def coerce(j: SJac, ties: frozenset, keys: tuple[Key, ...]) -> SJac:
    """Rewrite ``j`` in a coarser structure: fewer ties, more val classes."""
    if not ties <= j.ties:
        raise ValueError(f"cannot coerce: ties {sorted(ties)} not a subset of {sorted(j.ties)}")
    for t in sorted(j.ties - ties):
        j = untie(j, t)
    return expand_to(j, tuple(keys))


def join_structure(a: SJac, b: SJac):
    """The finest structure that can hold both ``a`` and ``b``: common ties, union of classes."""
    ties = a.ties & b.ties
    keys = set()
    for j in (a, b):
        for k in j.val_keys:
            if k in ties or k[0] is None or k[1] is None:
                keys.add(k)
        for t in j.ties - ties:
            keys.add((t[0], None))
            keys.add((None, t[1]))
    # A class that is tied in the result can only appear as the tie itself.
    return ties, tuple(sorted(keys, key=_key_order))


def _key_order(k):
    o, i = k
    return (o if o is not None else 10**6, i if i is not None else 10**6)


def add(a: SJac, b: SJac) -> SJac:
    if a.out_shape != b.out_shape or a.in_shape != b.in_shape:
        raise ValueError(f"cannot add Jacobians of shapes {a.out_shape}<-{a.in_shape} and "
                         f"{b.out_shape}<-{b.in_shape}")
    ties, keys = join_structure(a, b)
    a2, b2 = coerce(a, ties, keys), coerce(b, ties, keys)
    pattern = None
    if a2.pattern is not None and b2.pattern is not None:
        pattern = a2.pattern | b2.pattern
    val = a2.val if is_abstract(a2.val, b2.val) else a2.val + b2.val
    return SJac(a.out_shape, a.in_shape, ties, val, keys, a.const and b.const, pattern)


def scale(j: SJac, c) -> SJac:
    return dataclasses.replace(j, val=j.val * c)


def materialize(j: SJac, xp=jnp):
    """The dense ``[*out_shape, *in_shape]`` array (for tests and debugging); ``xp=numpy`` for
    trace-time arrays such as patterns."""
    no, ni = len(j.out_shape), len(j.in_shape)
    out_letters = [LETTERS[k] for k in range(no)]
    in_letters = [LETTERS[no + k] for k in range(ni)]
    operands, specs = [j.val], []
    letter_of = {}
    for k in j.classes():
        o, i = k
        letter_of[k] = out_letters[o] if o is not None else in_letters[i]
    specs.append("".join(letter_of[k] for k in j.val_keys))
    for o, i in sorted(j.ties):
        operands.append(xp.eye(j.out_shape[o], dtype=j.val.dtype))
        specs.append(out_letters[o] + in_letters[i])
    covered = set("".join(specs))
    for k in j.classes():
        o, i = k
        for letter, size in (
            (out_letters[o] if o is not None else None, j.out_shape[o] if o is not None else 0),
            (in_letters[i] if i is not None else None, j.in_shape[i] if i is not None else 0),
        ):
            if letter is not None and letter not in covered:
                operands.append(xp.ones(size, j.val.dtype))
                specs.append(letter)
                covered.add(letter)
    spec = ",".join(specs) + "->" + "".join(out_letters + in_letters)
    return xp.einsum(spec, *operands)


def materialize_pattern(j: SJac) -> np.ndarray:
    """Boolean non-zero pattern of the dense Jacobian (numpy, trace time)."""
    fake = dataclasses.replace(
        j, val=np.ones(np.shape(j.val)) if j.pattern is None else j.pattern.astype(float)
    )
    return materialize(fake, np) != 0


def _flatten_sjac(j: SJac):
    return (j.val,), (j.out_shape, j.in_shape, j.ties, j.val_keys)


def _unflatten_sjac(aux, children):
    out_shape, in_shape, ties, keys = aux
    return SJac(out_shape, in_shape, ties, children[0], keys, False, None)


# As a pytree an SJac carries its numbers; the structure is static and the trace-time facts
# (constancy, patterns) are dropped, so traces can live in a lax.scan carry and be vmapped.
jax.tree_util.register_pytree_node(SJac, _flatten_sjac, _unflatten_sjac)


def refine(j: SJac, out_view, in_view) -> SJac:
    """``j`` with each dim seen as its sub-dims: ``out_view[o]`` (``in_view[i]``) are the sizes,
    outermost first, that output dim ``o`` (input dim ``i``) is split into, row-major.

    A tie ``(o, i)`` becomes one tie per sub-dim, so both dims must be split alike; ``val`` and
    ``pattern`` are reshaped (free: row-major), never copied into a larger array.
    """
    out_view = [tuple(v) for v in out_view]
    in_view = [tuple(v) for v in in_view]
    if all(len(v) == 1 for v in out_view + in_view):
        return j
    o_start = [sum(len(v) for v in out_view[:o]) for o in range(len(out_view))]
    i_start = [sum(len(v) for v in in_view[:i]) for i in range(len(in_view))]
    ties = set()
    for o, i in j.ties:
        if out_view[o] != in_view[i]:
            raise ValueError(f"cannot refine a tie between dims split as {out_view[o]} and "
                             f"{in_view[i]}")
        ties.update((o_start[o] + k, i_start[i] + k) for k in range(len(out_view[o])))

    def sub(key):
        o, i = key
        if o is not None and i is not None:
            return [(o_start[o] + k, i_start[i] + k) for k in range(len(out_view[o]))]
        if o is not None:
            return [(o_start[o] + k, None) for k in range(len(out_view[o]))]
        return [(None, i_start[i] + k) for k in range(len(in_view[i]))]

    def sizes(key):
        o, i = key
        return out_view[o] if o is not None else in_view[i]

    keys = tuple(k for key in j.val_keys for k in sub(key))
    shape = tuple(s for key in j.val_keys for s in sizes(key))
    if is_abstract(j.val):
        val = Abstract(shape, j.val.dtype)
    elif isinstance(j.val, np.ndarray):
        val = np.reshape(j.val, shape)  # a trace-time constant stays one
    else:
        val = jnp.reshape(j.val, shape)
    pattern = None if j.pattern is None else np.reshape(j.pattern, shape)
    out_shape = tuple(s for v in out_view for s in v)
    in_shape = tuple(s for v in in_view for s in v)
    return SJac(out_shape, in_shape, frozenset(ties), val, keys, j.const, pattern)
