"""Products of several structured Jacobians, multiplied in the cheapest order.

``A_1 A_2 ... A_m G`` is the same matrix whatever the parenthesisation, but not the same work:
a trace ``G`` (``n x |theta|``) carried through ``k`` units by ``(H - D)[:, idx] @ S @ K`` costs
``O(n |theta|)`` per factor applied right to left, and ``O(k |theta|)`` once ``S @ K`` (a
``k x n`` matrix) is formed first. The cost of every product is known from the structure alone
(:func:`~._sjac.compose_cost`), so the order is chosen before any number is computed: the
classical matrix-chain dynamic programme over those costs.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from ._sjac import Abstract, SJac, compose, compose_cost


def _abstract(j: SJac) -> SJac:
    if isinstance(j.val, Abstract):
        return j
    return dataclasses.replace(j, val=Abstract(tuple(np.shape(j.val)), j.val.dtype))


@dataclasses.dataclass(frozen=True)
class ChainPlan:
    """How to multiply a chain: ``split`` of each sub-chain ``[i, j)`` (multiply ``[i, s)`` by
    ``[s, j)``), its ``cost`` in multiplications, and the abstract result."""

    split: dict
    cost: int
    result: SJac


def plan_chain(factors) -> ChainPlan:
    """The cheapest parenthesisation of ``factors[0] @ factors[1] @ ... @ factors[-1]``.

    **Arguments:** `factors`: SJacs (values or :class:`Abstract` stand-ins), each one's
    ``in_shape`` the next one's ``out_shape``.

    **Returns:** a :class:`ChainPlan`; ties in cost go to the right-to-left order (the order a
    trace update used before plans existed), so a chain no order improves keeps it.
    """
    mats = [_abstract(f) for f in factors]
    m = len(mats)
    if m == 0:
        raise ValueError("plan_chain: an empty chain has no product")

    @functools.cache
    def best(i: int, j: int):
        if j - i == 1:
            return 0, mats[i], None
        options = []
        # s = i + 1 first: a_i @ (rest), right to left, wins ties.
        for s in range(i + 1, j):
            cl, left, _ = best(i, s)
            cr, right, _ = best(s, j)
            options.append((cl + cr + compose_cost(left, right), s, left, right))
        cost, s, left, right = min(options, key=lambda o: o[0])
        return cost, compose(left, right), s

    cost, result, _ = best(0, m)
    split = {(i, j): best(i, j)[2] for i in range(m) for j in range(i + 2, m + 1)}
    return ChainPlan(split, cost, result)


def chain(factors, plan: ChainPlan | None = None) -> SJac:
    """``factors[0] @ ... @ factors[-1]`` in the order of `plan` (planned here if not given).

    **Returns:** the product as an SJac.
    """
    factors = list(factors)
    plan = plan_chain(factors) if plan is None else plan

    def run(i: int, j: int) -> SJac:
        if j - i == 1:
            return factors[i]
        s = plan.split[(i, j)]
        return compose(run(i, s), run(s, j))

    return run(0, len(factors))


def right_to_left_cost(factors) -> int:
    """Multiplications of ``factors`` applied right to left (the order a trace update used
    before :func:`plan_chain`), for comparisons."""
    mats = [_abstract(f) for f in factors]
    acc, cost = mats[-1], 0
    for f in reversed(mats[:-1]):
        cost += compose_cost(f, acc)
        acc = compose(f, acc)
    return cost
