"""Structural non-zero patterns of static values, one rule per primitive.

A weight masked by a constant (``W * (1 - I)``, ``where(mask, W, 0)``) is traced as the masked
weight; its pattern (a numpy bool array known at trace time) tells the engine which entries are
zero whatever the parameters. A primitive without a rule gives no pattern (every entry may be
non-zero), which is correct, only less compressed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# rule(output shape, input values (numpy, or None where not known at trace time), input
# patterns (None where unknown)) -> the output's pattern, or None.
PatternRule = Callable[[tuple, list, list], np.ndarray | None]


def _mul(shape, values, patterns):
    if all(q is None for q in patterns):
        return None
    p = np.ones(shape, bool)
    for q in patterns:
        if q is not None:
            p = p & np.broadcast_to(q, shape)
    return p


def _select_n(shape, values, patterns):
    pred = values[0]
    if pred is None:
        return None
    p = np.zeros(shape, bool)
    for k, q in enumerate(patterns[1:]):
        q = np.ones(shape, bool) if q is None else np.broadcast_to(q, shape)
        sel = (pred == k) if pred.dtype != bool else (pred if k else ~pred)
        p = p | (np.broadcast_to(sel, shape) & q)
    return p


def _same(shape, values, patterns):
    return patterns[0]


PATTERN_RULES: dict[str, PatternRule] = {
    "mul": _mul,
    "select_n": _select_n,
    "convert_element_type": _same,
}
