"""Eligibility traces: the influence recursion ``G_t = lam * H~_t G_{t-1} + F_t`` per sample.

The structure of every trace block (which identities it keeps, which axes it stores) is fixed
before the first step by iterating the recursion on structures alone until nothing changes; every
step then coerces its result into that structure, so the traces can live in a ``lax.scan`` carry.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..engine import (
    Abstract,
    SJac,
    StepGraph,
    add,
    chain,
    coerce,
    compose,
    compose_cost,
    is_float,
    join_structure,
    plan_chain,
    scale,
    state_dtype,
)
from ..policies import Policy, PolicyContext


def _layers_of_paths(paths, sequential: bool, index: int):
    out = []
    for path in paths:
        if not sequential or len(path) <= index:
            out.append({0})
            continue
        key = path[index]
        out.append({getattr(key, "idx", getattr(key, "key", 0))})
    return out


def policy_context(cell, graph: StepGraph) -> PolicyContext:
    """Shapes and layer membership of state leaves and traced parameters."""
    from .._cell import Sequential

    sequential = isinstance(cell, Sequential)
    s_paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(cell.initial_state())[0]]
    s_layers = _layers_of_paths(s_paths, sequential, 0)
    params, _ = eqx.partition(cell, eqx.is_inexact_array)
    p_paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    # Parameter paths of a Sequential read .layers[i]...; the layer index is the second key.
    p_layers = _layers_of_paths(p_paths, sequential, 1)
    phi_layers = [set().union(*(p_layers[k] for k in src)) if src else {0}
                  for src in graph.phi_sources]
    phi_shapes = [n.shape for n in graph.phi_nodes]
    return PolicyContext(graph.s_shapes, phi_shapes, s_layers, phi_layers)


class TraceStep:
    """Per-sample trace update for one (cell structure, policy)."""

    def __init__(self, graph: StepGraph, policy: Policy, context: PolicyContext, derived):
        self.graph = graph
        self.policy = policy
        self.context = context
        self.derived = tuple(derived)
        # Integer and boolean leaves (a refractory counter) have no derivative: carried with
        # the state, never traced, no learning signal.
        self.primary = [a for a, node in enumerate(graph.s_nodes)
                        if a not in self.derived and is_float(node.dtype)]
        self.pairs = [(a, p) for a in self.primary for p in range(len(graph.phi_nodes))
                      if policy.keep_trace(a, p, context)]
        self.structure: dict = {}

    # ----- one step --------------------------------------------------------------------------
    def blocks(self, p_leaves, s_leaves, x_leaves, env=None):
        res = self.graph.jacobians(p_leaves, s_leaves, x_leaves, env=env)
        if res.derived != self.derived:
            raise RuntimeError("derived state leaves changed between traces of one step")
        return res.new_state, res.H, res.F, res.K

    def carried(self, H, K_prev, context):
        """``H~[a, v]`` for primary ``a, v``: the policy's part of ``H``, with derived leaves of
        the previous step folded in through their same-step Jacobians ``K``."""
        out: dict = {}
        for (a, b), block in H.items():
            if a not in self.primary:
                continue
            terms = _as_products(self.policy.carry(block, a, b, context))
            if b in self.derived:
                for (z, v), k in K_prev.items():
                    if z == b:
                        out.setdefault((a, v), []).extend(t + (k,) for t in terms)
            elif terms:
                out.setdefault((a, b), []).extend(terms)
        return out

    def update(self, G, Ht, F, *, coerce_result=True):
        lam = self.policy.lam
        new = {}
        for a, p in self.pairs:
            terms = []
            if (a, p) in F:
                terms.append(F[(a, p)])
            chains = []
            for (a2, b), products in Ht.items():
                if a2 != a or (b, p) not in G or lam == 0.0:
                    continue
                chains.extend(product + (G[(b, p)],) for product in products)
            for t in _carried_terms(chains):
                terms.append(t if lam == 1.0 else scale(t, lam))
            if not terms:
                continue
            total = terms[0]
            for t in terms[1:]:
                total = add(total, t)
            total = self.policy.restrict_trace(total, a, p, self.context)
            if coerce_result:
                ties, keys = self.structure[(a, p)]
                total = coerce(total, ties, keys)
            new[(a, p)] = total
        if coerce_result:
            for key in self.structure:
                if key not in new:
                    new[key] = _zeros(self.structure[key], G[key])
        return new

    # ----- fixing the structure ---------------------------------------------------------------
    def fix_structure(self, p_leaves, s_leaves, x_leaves, policy_state):
        """Iterate the recursion on structures until the trace structure is stable."""
        dtype = state_dtype(s_leaves)
        structure: dict = {}
        shapes = {}
        for _ in range(16):
            G = {k: _zeros_struct(v, shapes[k], dtype) for k, v in structure.items()}

            def one(G):
                _, H, F, K = self.blocks(p_leaves, s_leaves, x_leaves)
                ctx = self.context.with_state(policy_state)
                Ht = self.carried(H, K, ctx)
                return self.update(G, Ht, F, coerce_result=False)

            out = jax.eval_shape(one, G)
            changed = False
            for key, j in out.items():
                if key in structure:
                    old = _struct_sjac(structure[key], shapes[key])
                    ties, keys = join_structure(old, _abstract(j))
                else:
                    ties, keys = j.ties, tuple(j.val_keys)
                    shapes[key] = (j.out_shape, j.in_shape)
                if structure.get(key) != (ties, keys):
                    structure[key] = (ties, keys)
                    changed = True
            if not changed:
                break
        else:
            raise RuntimeError("trace structure did not settle in 16 iterations")
        self.structure = structure
        self.shapes = shapes
        return structure

    def zeros(self, dtype):
        return {k: _zeros_struct(v, self.shapes[k], dtype) for k, v in self.structure.items()}

    def stored_size(self) -> int:
        return sum(stored_numbers(v, self.shapes[k]) for k, v in self.structure.items())


def stored_numbers(structure, shapes) -> int:
    """Numbers per sample that a trace of this structure stores."""
    return _struct_sjac(structure, shapes).stored_size


def _carried_terms(chains) -> list:
    """The carried terms ``H~ G`` of one trace: each chain ``(f_1, ..., f_m, G_b)`` multiplied
    in its cheapest order (:func:`~snnplast.engine.plan_chain`), and chains that begin with the
    same factor (RandomK's paths through its ``k`` units, one chain per leaf they come from)
    summed before that factor, when the structures say this is cheaper: one ``n x k`` product
    per trace instead of one per leaf, and the sum taken over ``k`` rows instead of ``n``.
    """
    plans = [plan_chain(c) for c in chains]
    groups: dict = {}
    for c, plan in zip(chains, plans):
        # The chain's cheapest order ends with its first factor times the rest.
        if len(c) > 2 and plan.split[(0, len(c))] == 1:
            groups.setdefault(id(c[0]), []).append(c)
    grouped = set()
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        first = members[0][0]
        rests = [chain(c[1:]) for c in members]
        summed = rests[0]
        for r in rests[1:]:
            summed = add(summed, r)
        if compose_cost(first, summed) > sum(compose_cost(first, r) for r in rests):
            continue
        out.append(compose(first, summed))
        grouped.update(id(c) for c in members)
    out.extend(chain(c, plan) for c, plan in zip(chains, plans) if id(c) not in grouped)
    return out


def _as_products(kept) -> list:
    """A policy's carried part as a list of products (tuples of SJacs, applied right to left)."""
    if kept is None:
        return []
    if isinstance(kept, SJac):
        return [(kept,)]
    return [tuple(t) for t in kept]


def _abstract(j: SJac) -> SJac:
    return SJac(j.out_shape, j.in_shape, j.ties, Abstract(tuple(j.val.shape)), j.val_keys,
                False)


def _struct_sjac(structure, shapes) -> SJac:
    ties, keys = structure
    out_shape, in_shape = shapes
    j = SJac(out_shape, in_shape, ties, None, keys, False)
    return SJac(out_shape, in_shape, ties, Abstract(tuple(j.key_size(k) for k in keys)), keys,
                False)


def _zeros_struct(structure, shapes, dtype) -> SJac:
    j = _struct_sjac(structure, shapes)
    return SJac(j.out_shape, j.in_shape, j.ties, jnp.zeros(j.val.shape, dtype), j.val_keys, False)


def _zeros(structure, like: SJac) -> SJac:
    return _zeros_struct(structure, (like.out_shape, like.in_shape), like.val.dtype)
