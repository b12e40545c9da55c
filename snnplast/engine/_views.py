"""View refinement: each dim of each value seen as the finest row-major factorisation that every
reshape, split, slice and concatenation of the step agrees with.

A tie relates a whole output dim to a whole input dim. ``jnp.split`` of a stacked ``4n`` axis or a
reshape of ``d_model`` into ``(heads, d_head)`` relates *parts* of dims: unit ``j`` of a gate is
row ``g * n + j`` of the stacked axis. Seen as ``(4, n)``, that axis is two dims, and the relation
is an ordinary tie on ``n`` plus a selection on ``4``.

A refinement of a dim of size ``N`` is a *chain* of strides ``1 = c_0 < c_1 < ... < c_m = N``, each
dividing the next: the dim is viewed as sub-dims of sizes ``c_m / c_{m-1}, ..., c_1 / c_0``
(outermost first, row-major), so viewing is a free reshape. The chains come from constraints:

- a tie between two dims (from any Jacobian rule) makes their chains equal: one union-find class;
- a reshape makes the strides of its input and output the same once both are laid on the flat
  index (each dim's chain scaled by the size of the dims after it);
- a selection along a dim (``split``, ``slice``, ``concatenate``) at offsets and sizes that share a
  factor ``s`` cuts both sides at ``s`` and makes their chains below ``s`` equal: inner sub-dims are
  tied, outer ones selected.

The ties are mandatory; every reshape and selection is optional: it is accepted, in the order of
the step, only if all chains stay divisibility chains (a common refinement exists) and no state
leaf's own axes are cut (state leaves keep the shapes the cell gives them). A rejected one keeps
its dense-with-pattern Jacobian (correct, not compressed) and is reported.
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Select:
    """Dims cut at stride ``s``: ``(in_key, out_key, in_size, out_size, s)`` per selected dim."""

    dims: tuple

    def keys(self):
        """``(key, size)`` of every dim the constraint touches."""
        for k_in, k_out, n, m, _ in self.dims:
            yield k_in, n
            yield k_out, m


@dataclasses.dataclass(frozen=True)
class Segment:
    """A reshape: ``(key, outer_stride, size)`` for the input dims and for the output dims."""

    ins: tuple
    outs: tuple

    def keys(self):
        for key, _, size in self.ins + self.outs:
            yield key, size


class _Conflict(Exception):
    pass


def _is_chain(strides) -> bool:
    c = sorted(strides)
    return all(b % a == 0 for a, b in zip(c, c[1:]))


def _sizes(chain) -> tuple[int, ...]:
    c = sorted(chain)
    if len(c) == 1:  # a dim of size 1
        return (1,)
    return tuple(c[k + 1] // c[k] for k in reversed(range(len(c) - 1)))


class ViewSolver:
    """Union-find over ``(node_id, dim)`` with a stride chain per class."""

    def __init__(self):
        self.parent: dict = {}
        self.chain: dict = {}
        self.size: dict = {}
        self.frozen: set = set()
        self.accepted: list = []

    def add(self, key, size: int) -> None:
        if key not in self.parent:
            self.parent[key] = key
            self.size[key] = int(size)
            self.chain[key] = frozenset({1, int(size)})

    def find(self, key):
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] != self.size[rb]:
            raise ValueError(f"tied dims of different sizes: {a} ({self.size[ra]}) and {b} "
                             f"({self.size[rb]})")
        self.parent[rb] = ra
        self.chain[ra] = self.chain[ra] | self.chain.pop(rb)
        if rb in self.frozen:
            self.frozen.add(ra)

    def freeze(self, key) -> None:
        self.frozen.add(self.find(key))

    def strides(self, key) -> frozenset:
        return self.chain[self.find(key)]

    def _grow(self, key, strides) -> bool:
        r = self.find(key)
        new = frozenset(strides) - self.chain[r]
        if not new:
            return False
        if r in self.frozen:
            raise _Conflict("it would split an axis of a state leaf")
        merged = self.chain[r] | new
        if not _is_chain(merged):
            raise _Conflict(f"strides {sorted(merged)} of a dim of size {self.size[r]} admit no "
                            f"common refinement")
        self.chain[r] = merged
        return True

    def _apply(self, con) -> bool:
        changed = False
        if isinstance(con, Select):
            for k_in, k_out, _, _, s in con.dims:
                changed |= self._grow(k_in, {s})
                changed |= self._grow(k_out, {s})
                low = {c for c in self.strides(k_in) | self.strides(k_out) if c <= s}
                changed |= self._grow(k_in, low)
                changed |= self._grow(k_out, low)
        else:
            flat = set()
            for key, outer, _ in con.ins + con.outs:
                flat |= {outer * c for c in self.strides(key)}
            if not _is_chain(flat):
                raise _Conflict(f"the reshape's strides {sorted(flat)} admit no common "
                                "refinement")
            for key, outer, size in con.ins + con.outs:
                part = {f // outer for f in flat if outer <= f <= outer * size}
                changed |= self._grow(key, part)
        return changed

    def _settle(self) -> None:
        for _ in range(10_000):
            if not any([self._apply(c) for c in self.accepted]):
                return
        raise RuntimeError("view refinement did not settle")

    def offer(self, con) -> str | None:
        """Accept ``con`` if a common refinement with everything accepted so far exists.

        **Returns:** ``None`` when accepted, else the reason it was not.
        """
        saved = dict(self.chain)
        self.accepted.append(con)
        try:
            self._settle()
        except _Conflict as e:
            self.accepted.pop()
            self.chain = saved
            return str(e)
        return None

    def view(self, key, size: int) -> tuple[int, ...]:
        if key not in self.parent:
            return (int(size),)
        return _sizes(self.strides(key))


def select_constraint(in_id, out_id, dims) -> Select | None:
    """The selection constraint of ``out[dim] = in[dim][offset : offset + m]`` for each
    ``(dim, offset, in_size, m)`` in ``dims``; ``None`` when no selected dim shares a factor
    ``s > 1`` between offset, size and extent (then nothing is gained)."""
    parts = []
    for d, offset, n, m in dims:
        s = math.gcd(n, m, offset)
        if s > 1:
            parts.append(((in_id, d), (out_id, d), n, m, s))
        elif n != m:
            return None
    return Select(tuple(parts)) if parts else None


def reshape_constraint(in_id, in_shape, out_id, out_shape) -> Segment:
    def dims(node, shape):
        return tuple(((node, d), math.prod(shape[d + 1 :]), shape[d]) for d in range(len(shape)))

    return Segment(dims(in_id, in_shape), dims(out_id, out_shape))


def split_view(sizes: tuple[int, ...], s: int) -> int:
    """How many trailing sub-dims of a view multiply to ``s`` (the inner, tied part)."""
    prod, k = 1, 0
    for size in reversed(sizes):
        if prod == s:
            break
        prod *= size
        k += 1
    if prod != s:
        raise ValueError(f"view {sizes} has no sub-dim boundary at stride {s}")
    return k
