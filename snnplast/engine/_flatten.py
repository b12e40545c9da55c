"""Flatten a jaxpr into one list of equations with call bodies inlined and short loops unrolled.

``jit`` bodies (what ``jnp.where`` and every ``jax.nn`` function arrive wrapped in) are inlined.
A ``custom_jvp`` call becomes two parts: the call itself, evaluated for its value only, and the
jaxpr of the user's JVP rule, whose tangent inputs are the call's inputs and whose tangent outputs
become the call's outputs. The derivative the engine then sees is exactly the user's rule (for a
spike, the surrogate), obtained by the same rules as everything else.

A ``cond`` (``lax.cond``, ``lax.switch``) has every branch flattened inline and each output
chosen by ``select_n`` on the branch index, so the structure of the result is the union of the
branches' structures (two diagonal branches give a diagonal). The equations of branch ``k`` are
*guarded* by ``index == k``: their Jacobians are replaced by exact zeros when another branch is
taken (:func:`~._graph.StepGraph.jacobians`), so an untaken branch that computes ``log`` of a
negative number or ``1 / 0`` cannot turn the product with the selection's zero into NaN. Like
JAX's own derivative of ``cond``, the derivative is the taken branch's alone.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import jax
import numpy as np

from . import _jaxcompat as jc
from ._dtype import is_float

_ids = itertools.count()

# A loop inside the step (sub-steps of an ODE, ``lax.fori_loop`` with a fixed count) up to this
# many iterations is unrolled, so each iteration's operations keep their structure; a longer one
# stays one primitive, differentiated densely.
MAX_UNROLL = 32


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
    # ((index node, k), ...): the equation belongs to branch k of a cond on that index (one
    # pair per enclosing cond); its Jacobians count only when every index has its value.
    guard: tuple = ()


class Flat:
    def __init__(self):
        self.eqns: list[FlatEqn] = []
        self.nondiff: set[int] = set()  # node ids known to carry no derivative

    def new_node(self, aval, name="") -> Node:
        return Node(tuple(aval.shape), aval.dtype, name)

    def is_nondiff(self, a) -> bool:
        return isinstance(a, Const) or a.id in self.nondiff or not is_float(a.dtype)


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
        elif name == "cond" and not all_nondiff and _pure(eqn.params["branches"]):
            outs = _flatten_cond(eqn, ins, flat)
        elif name == "scan" and not all_nondiff and 0 < eqn.params["length"] <= MAX_UNROLL:
            outs = _flatten_scan(eqn, ins, flat)
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


def _inline(fn, ins, flat: Flat):
    """Append the equations of ``fn(*ins)`` (traced on the inputs' shapes) to `flat`."""
    structs = [jax.ShapeDtypeStruct(a.shape, _dtype(a)) for a in ins]
    closed = jax.make_jaxpr(fn)(*structs)
    return flatten(closed.jaxpr, closed.consts, list(ins), flat)[1]


def _dtype(a):
    return a.dtype if isinstance(a, Node) else np.asarray(a.value).dtype


def _flatten_scan(eqn, ins, flat: Flat):
    """A ``scan`` of fixed length, unrolled: its body once per iteration, ``xs`` indexed and the
    per-iteration outputs stacked by ordinary (structured) operations."""
    p = eqn.params
    body, n_consts, n_carry = p["jaxpr"], p["num_consts"], p["num_carry"]
    consts, carry = ins[:n_consts], ins[n_consts:n_consts + n_carry]
    xs = ins[n_consts + n_carry:]
    steps = range(p["length"])
    ys_by_step = {}
    for i in reversed(steps) if p["reverse"] else steps:
        x_i = [_inline(lambda v, i=i: jax.lax.index_in_dim(v, i, keepdims=False), [x], flat)[0]
               for x in xs]
        outs = flatten(body.jaxpr, body.consts, [*consts, *carry, *x_i], flat)[1]
        carry, ys_by_step[i] = outs[:n_carry], outs[n_carry:]
    n_ys = len(eqn.outvars) - n_carry
    stacked = [_inline(lambda *v: jax.numpy.stack(v), [ys_by_step[i][k] for i in steps], flat)[0]
               for k in range(n_ys)]
    return [*carry, *stacked]


def _pure(branches) -> bool:
    """Whether every branch is free of effects (a ``jax.debug.print``, a callback, an
    ``eqx.error_if``): flattened, every branch would run at every step, so a branch with an
    effect keeps the ``cond`` whole (differentiated densely)."""
    return not any(b.effects for b in branches)


def _flatten_cond(eqn, ins, flat: Flat):
    """A ``cond``: every branch inline, guarded by its index, the outputs chosen by ``select_n``
    on the index (which carries no derivative: it is an integer)."""
    index, operands = ins[0], ins[1:]
    branches = eqn.params["branches"]
    if isinstance(index, Const):  # known at trace time: the one branch taken
        taken = branches[int(np.clip(index.value, 0, len(branches) - 1))]
        return flatten(taken.jaxpr, taken.consts, operands, flat)[1]
    per_branch = []
    for k, branch in enumerate(branches):
        start = len(flat.eqns)
        per_branch.append(flatten(branch.jaxpr, branch.consts, operands, flat)[1])
        for e in flat.eqns[start:]:
            e.guard = ((index, k), *e.guard)
    return [_inline(lambda i, *cases: jax.lax.select_n(i, *cases), [index, *cases], flat)[0]
            for cases in zip(*per_branch)]
