"""Flatten a jaxpr into one list of equations with call bodies inlined.

``jit`` bodies (what ``jnp.where`` and every ``jax.nn`` function arrive wrapped in) are inlined.
A ``custom_jvp`` call becomes two parts: the call itself, evaluated for its value only, and the
jaxpr of the user's JVP rule, whose tangent inputs are the call's inputs and whose tangent outputs
become the call's outputs. The derivative the engine then sees is exactly the user's rule (for a
spike, the surrogate), obtained by the same rules as everything else.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import jax
import numpy as np

from . import _jaxcompat as jc

_ids = itertools.count()


@dataclasses.dataclass(eq=False)
class Node:
    """A value in the flattened step: its shape and dtype, and where it came from."""

    shape: tuple[int, ...]
    dtype: Any
    name: str = ""
    id: int = dataclasses.field(default_factory=lambda: next(_ids))

    def __repr__(self):
        return f"Node({self.name or self.id}, {self.shape})"


@dataclasses.dataclass(eq=False)
class Const:
    value: Any

    @property
    def shape(self):
        return tuple(np.shape(self.value))


@dataclasses.dataclass(eq=False)
class FlatEqn:
    primitive: Any
    params: dict
    inputs: list  # Node | Const
    outputs: list[Node]
    kind: str = "op"  # "op" | "value" (no derivative) | "alias" (identity, no value) | "nondiff"


class Flat:
    def __init__(self):
        self.eqns: list[FlatEqn] = []
        self.nondiff: set[int] = set()  # node ids known to carry no derivative

    def new_node(self, aval, name="") -> Node:
        return Node(tuple(aval.shape), aval.dtype, name)

    def is_nondiff(self, a) -> bool:
        return isinstance(a, Const) or a.id in self.nondiff or not is_float(a.dtype)


def is_float(dtype) -> bool:
    """Whether values of `dtype` carry derivatives (floating or complex)."""
    return jax.numpy.issubdtype(dtype, jax.numpy.inexact)


def flatten(jaxpr, consts, inputs, flat: Flat | None = None):
    """Append the equations of ``jaxpr`` to ``flat`` with its inputs bound to ``inputs``.

    **Returns:** ``(flat, outputs)``.
    """
    flat = flat if flat is not None else Flat()
    env: dict = {}

    def read(v):
        if isinstance(v, jc.Literal):
            return Const(v.val)
        return env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = Const(c)
    for v, a in zip(jaxpr.invars, inputs):
        env[v] = a

    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        all_nondiff = all(flat.is_nondiff(a) for a in ins)
        if name in jc.CALL_PRIMITIVES and not all_nondiff:
            body, body_consts = jc.sub_jaxpr(eqn.params)
            _, outs = flatten(body, body_consts, ins, flat)
        elif name in jc.CUSTOM_JVP and not all_nondiff:
            outs = _flatten_custom_jvp(eqn, ins, flat)
        else:
            outs = [flat.new_node(v.aval) for v in eqn.outvars]
            kind = "value" if all_nondiff else "op"
            flat.eqns.append(FlatEqn(eqn.primitive, dict(eqn.params), ins, outs, kind))
            if all_nondiff:
                flat.nondiff.update(o.id for o in outs)
        for v, o in zip(eqn.outvars, outs):
            env[v] = o
    return flat, [read(v) for v in jaxpr.outvars]


def _flatten_custom_jvp(eqn, ins, flat: Flat):
    outs = [flat.new_node(v.aval) for v in eqn.outvars]
    flat.eqns.append(FlatEqn(eqn.primitive, dict(eqn.params), ins, outs, "value"))
    diff_pos = [k for k, a in enumerate(ins) if not flat.is_nondiff(a)]
    avals = [v.aval for v in eqn.invars]

    def tangent_fn(primals, tangents):
        def f(*diff_args):
            args = list(primals)
            for k, a in zip(diff_pos, diff_args):
                args[k] = a
            return jc.bind(eqn.primitive, eqn.params, *args)

        return jax.jvp(f, tuple(primals[k] for k in diff_pos), tuple(tangents))[1]

    structs = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in avals]
    closed = jax.make_jaxpr(tangent_fn)(structs, [structs[k] for k in diff_pos])
    # Primal inputs of the rule only supply coefficients: copies that carry no derivative.
    primal_nodes = []
    for a in ins:
        if isinstance(a, Const):
            primal_nodes.append(a)
            continue
        c = Node(a.shape, a.dtype, "primal")
        flat.eqns.append(FlatEqn(None, {}, [a], [c], "nondiff"))
        flat.nondiff.add(c.id)
        primal_nodes.append(c)
    tangent_nodes = [ins[k] for k in diff_pos]
    _, touts = flatten(closed.jaxpr, closed.consts, primal_nodes + tangent_nodes, flat)
    for t, o in zip(touts, outs):
        if isinstance(t, Const) or not is_float(o.dtype):
            continue  # a zero tangent: no edge
        flat.eqns.append(FlatEqn(None, {}, [t], [o], "alias"))
    return outs
