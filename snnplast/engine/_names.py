"""Readable names for a cell's state leaves and traced parameters.

A state is usually a plain tuple, so its path says ``[0][2]``; the cell's own ``__call__`` says
what it calls that leaf (``v, a, z = state``). Names are read from there, from NamedTuple or
dataclass fields, and from a :class:`snnplast.Sequential`'s layers (``layers[0].v``); anything
else keeps its path. Parameters are named by their attribute path (``layers[0].w_in``) and a
traced parameter computed from parameters (a masked weight) as ``f(layers[0].w_rec)``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap

import equinox as eqx
import jax

from .._cell import Sequential


@functools.cache
def _unpacked_names(cls) -> tuple | None:
    """``("v", "a", "z")`` for a ``__call__`` that starts ``v, a, z = state``; ``("h",)`` for
    ``h = state`` or ``def __call__(self, h, x)``; ``None`` when it cannot tell."""
    try:
        source = textwrap.dedent(inspect.getsource(cls.__call__))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return None
    fn = tree.body[0]
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or len(fn.args.args) < 2:
        return None
    arg = fn.args.args[1].arg
    for node in ast.walk(fn):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.value, ast.Name) and node.value.id == arg):
            target = node.targets[0]
            if isinstance(target, ast.Tuple) and all(isinstance(t, ast.Name) for t in target.elts):
                return tuple(t.id for t in target.elts)
            if isinstance(target, ast.Name):
                return (target.id,)
    return (arg,)


def _strip(text: str) -> str:
    return text.removeprefix(".")


def _leaf_name(cell, path) -> str:
    parts = []
    cur, rest = cell, list(path)
    while rest:
        key = rest[0]
        idx = getattr(key, "idx", None)
        if isinstance(cur, Sequential) and idx is not None:
            parts.append(f"layers[{idx}]")
            cur, rest = cur.layers[idx], rest[1:]
            continue
        names = _unpacked_names(type(cur)) if cur is not None else None
        if idx is not None and names is not None and len(names) > 1 and idx < len(names):
            parts.append(names[idx])
        else:
            parts.append(_strip(jax.tree_util.keystr((key,))))
        cur, rest = None, rest[1:]
    if cur is not None:  # the whole state of this cell is one array
        names = _unpacked_names(type(cur))
        parts.append(names[0] if names is not None and len(names) == 1 else "state")
    text = ".".join(parts)
    return text.replace(".[", "[")


def state_names(cell) -> list[str]:
    """Names of the state leaves of ``cell``, in leaf order (unique)."""
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(cell.initial_state())[0]]
    names = [_leaf_name(cell, p) for p in paths]
    if len(set(names)) != len(names):  # a name read from the source that does not fit
        names = [_strip(jax.tree_util.keystr(p)) or "state" for p in paths]
    return names


def param_paths(cell) -> list[str]:
    """Attribute paths of the cell's parameter leaves (``layers[0].w_in``)."""
    params, _ = eqx.partition(cell, eqx.is_inexact_array)
    return [_strip(jax.tree_util.keystr(p))
            for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


def traced_param_names(cell, graph) -> list[str]:
    """One name per traced parameter: its path, or ``f(paths)`` when it is computed from the
    cell's parameters (a masked weight ``W * mask`` is ``f(w_rec)``)."""
    paths = param_paths(cell)
    by_id = {n.id: k for k, n in enumerate(graph.p_nodes)}
    return [paths[by_id[n.id]] if n.id in by_id else
            "f(" + ", ".join(paths[k] for k in graph.phi_sources[q]) + ")"
            for q, n in enumerate(graph.phi_nodes)]
