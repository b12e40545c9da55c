"""A cache of compiled ``snnplast.gradients`` calls, so that calling it in a loop compiles once.

Called eagerly, ``gradients`` builds its scans from closures made per call, so every call traced
and compiled them again (about 2 s a call for a 4-neuron ALIF, and XLA keeps each executable,
with memory mappings of its own: ``benchmarks/eager_calls.py``). Here a call is keyed by what
the compiled program depends on besides the floating-point arrays it takes as arguments: the
model's structure and its other leaves (integer and boolean arrays by value, since the trace
engine reads them), the method, the loss, the block, and the shapes and dtypes of the arrays.
A call with the same key runs the program compiled for the first one.

Calls that cannot be keyed (a leaf that is neither an array nor hashable) and calls made under
a transformation of the caller's own (``jit``, ``grad``, ``vmap``: tracers among the
arguments) run as before, traced in place.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import equinox as eqx
import jax
import numpy as np

MAX_PROGRAMS = 16  # compiled programs kept; the least recently used one is dropped first

_programs: OrderedDict = OrderedDict()


def _frozen_leaf(leaf):
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        a = np.asarray(leaf)
        return ("array", a.shape, a.dtype.str, a.tobytes())
    hash(leaf)  # TypeError for an unhashable leaf: the call is not keyed
    return leaf


def _frozen(tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree, is_leaf=lambda x: x is None)
    return treedef, tuple(_frozen_leaf(leaf) for leaf in leaves)


def _signature(tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    # the dtype's name, not NumPy's code: a typed PRNG key's dtype has none; no copy to host
    dtype = lambda a: a.dtype if hasattr(a, "dtype") else np.result_type(a)
    return treedef, tuple((np.shape(a), str(dtype(a))) for a in leaves)


def _traced(tree) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(tree))


def compiled_call(run: Callable, model, inputs, targets, key, static: tuple):
    """``run(model, inputs, targets, key, *static)``, compiled once per key and reused.

    **Arguments:**

    - `run`: the computation; it must depend on nothing but its arguments.
    - `model`: its floating-point arrays are the program's arguments; the rest is part of the
      key (arrays by value).
    - `inputs`, `targets`, `key`: arrays (or ``None`` for `key`), the program's arguments.
    - `static`: hashable values the computation depends on (method, loss, block), or pytrees
      with array leaves, keyed by value.
    """
    if _traced((model, inputs, targets, key, static)):
        return run(model, inputs, targets, key, *static)
    params, rest = eqx.partition(model, eqx.is_inexact_array)
    try:
        entry = (_frozen(rest), _frozen(static), _signature(params), _signature(inputs),
                 _signature(targets), _signature(key))
        hash(entry)
    except TypeError:
        return run(model, inputs, targets, key, *static)
    program = _programs.get(entry)
    if program is None:

        def program(p, x, y, k, _rest=rest, _static=static):
            return run(eqx.combine(p, _rest), x, y, k, *_static)

        program = eqx.filter_jit(program)  # outputs may hold non-arrays (None, functions)
        _programs[entry] = program
        while len(_programs) > MAX_PROGRAMS:
            _programs.popitem(last=False)
    else:
        _programs.move_to_end(entry)
    return program(params, inputs, targets, key)


def clear() -> None:
    """Drop every compiled program this cache holds."""
    _programs.clear()
