"""The step of a cell as a graph of structured Jacobians.

:class:`StepGraph` traces ``cell(state, x)`` once, flattens the jaxpr, and classifies every value:

- *dynamic*: depends on the state or the input, so it changes from step to step;
- *static*: depends only on parameters and constants (``W_rec * (1 - I)``, ``exp(-1/tau)``).

Static values that feed dynamic equations through a differentiable path are the **traced
parameters** ``phi``: the traces are kept with respect to them, and gradients are carried back to
the cell's own parameters by one reverse-mode product of the static part at the end
(``phi(theta)`` does not change over time, so this is exact). A weight masked by a constant is thus
traced as the masked weight, whose structural zeros are known.

:meth:`StepGraph.jacobians` evaluates, inside any transformation, the values of the step and the
compressed blocks ``H = d state_t / d state_{t-1}`` and ``F = d state_t / d phi`` by vertex
elimination; state leaves that depend on the past only through other new state leaves of the same
step (a spike ``z_t = H(v_t - theta)``) are reported as *derived*, with ``K = d z_t / d v_t``.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._step_contract import check_step_result
from . import _jaxcompat as jc
from ._cut import direct_cut
from ._dtype import cast_floats, input_dtype, is_float, state_dtype
from ._eliminate import Graph, eliminate
from ._flatten import Const, Flat, Node, flatten
from ._hoist import HoistPlan, plan_hoist
from ._interpret import EVALUATE, interpret, when_known
from ._parts import sharpen
from ._patterns import PATTERN_RULES
from ._rules import RuleContext, has_zero_derivative, rule_for
from ._sjac import Abstract, SJac, diagonal, refine
from ._view_rules import VIEW_RULES
from ._views import ViewSolver


@dataclasses.dataclass
class StepJacobians:
    """What one evaluation of the step graph yields (for one sample)."""

    new_state: list  # leaves
    output: list  # leaves
    phi: list  # values of the traced parameters
    H: dict  # (a, b) -> SJac: d new_state[a] / d state[b]
    F: dict  # (a, p) -> SJac: d new_state[a] / d phi[p]
    K: dict  # (z, v) -> SJac for derived leaves z: d new_state[z] / d new_state[v] (same step)
    derived: tuple  # indices of derived state leaves
    out_H: dict  # (k, b) -> SJac: d output[k] / d state[b] (only when requested)
    out_F: dict  # (k, p) -> SJac
    cost: dict  # {order: multiplications} planned, and "spent"


class StepGraph:
    """The traced, classified step of ``cell`` for inputs shaped like ``x``."""

    def __init__(self, cell, x):
        params, static = eqx.partition(cell, eqx.is_inexact_array)
        p_leaves, self.p_def = jax.tree_util.tree_flatten(params)
        state = cell.initial_state()
        s_leaves, self.s_def = jax.tree_util.tree_flatten(state)
        # Float64 inputs to a float32 model (x64 on) are read as float32, as without x64:
        # the graph is traced for the cast inputs and casts what it is given (_inputs).
        self.input_dtype = input_dtype(lambda s, xx: cell(s, xx), state, x)
        if self.input_dtype is not None:
            x = cast_floats(x, self.input_dtype)
        x_leaves, self.x_def = jax.tree_util.tree_flatten(x)
        self.static_part = static
        self.owner = type(cell).__name__
        self.p_shapes = [tuple(jnp.shape(p)) for p in p_leaves]
        self.s_shapes = [tuple(jnp.shape(s)) for s in s_leaves]

        def step(p, s, xx):
            c = eqx.combine(jax.tree_util.tree_unflatten(self.p_def, p), static)
            result = c(
                jax.tree_util.tree_unflatten(self.s_def, s),
                jax.tree_util.tree_unflatten(self.x_def, xx),
            )
            check_step_result(cell, state, result)
            new_s, out = result
            new_leaves = jax.tree_util.tree_leaves(new_s)
            out_leaves, self.out_def = jax.tree_util.tree_flatten(out)
            return new_leaves, out_leaves

        with jax.ensure_compile_time_eval():
            closed = jax.make_jaxpr(step)(p_leaves, s_leaves, x_leaves)
        aval = lambda a, name: Node(tuple(jnp.shape(a)), jnp.result_type(a), name)
        self.p_nodes = [aval(a, f"param{k}") for k, a in enumerate(p_leaves)]
        self.s_nodes = [aval(a, f"state{k}") for k, a in enumerate(s_leaves)]
        # Every Jacobian is kept in the traces' dtype: a step that computes part of its work in
        # another precision (a float16 / bfloat16 cast, a float32 helper in a float64 model)
        # would otherwise mix dtypes in the products, which strict promotion refuses.
        self.jac_dtype = state_dtype(self.s_nodes)
        self.x_nodes = [aval(a, f"x{k}") for k, a in enumerate(x_leaves)]
        self.flat: Flat = Flat()
        for n in self.s_nodes + self.x_nodes + self.p_nodes:
            if not is_float(n.dtype):
                self.flat.nondiff.add(n.id)
        _, outs = flatten(
            closed.jaxpr, closed.consts, self.p_nodes + self.s_nodes + self.x_nodes, self.flat
        )
        self.state_out = outs[: len(s_leaves)]
        self.out = outs[len(s_leaves) :]
        self._classify()
        self.views: dict = {}
        self.view_rules: dict = {}
        self._cuts: dict = {}
        self._hoist_plans: dict = {}
        self._refine_views(p_leaves, s_leaves, x_leaves)

    # ----- classification (trace time) --------------------------------------------------------
    def _classify(self):
        flat = self.flat
        dyn = {n.id for n in self.s_nodes + self.x_nodes}
        pdiff = {n.id for n in self.p_nodes if is_float(n.dtype)}
        for e in flat.eqns:
            node_ins = [a for a in e.inputs if isinstance(a, Node)]
            if any(a.id in dyn for a in node_ins):
                dyn.update(o.id for o in e.outputs)
            differentiable = e.kind in ("op", "alias") and not (
                e.primitive and has_zero_derivative(e.primitive))
            if differentiable and any(a.id in pdiff for a in node_ins):
                pdiff.update(o.id for o in e.outputs if is_float(o.dtype))
        self.dyn = dyn
        phi: dict[int, Node] = {}
        for e in flat.eqns:
            if e.kind not in ("op", "alias") or not any(o.id in dyn for o in e.outputs):
                continue
            for a in e.inputs:
                if isinstance(a, Node) and a.id not in dyn and a.id in pdiff:
                    phi.setdefault(a.id, a)
        for a in self.state_out + self.out:
            if isinstance(a, Node) and a.id not in dyn and a.id in pdiff:
                phi.setdefault(a.id, a)
        order = {e.id: k for k, e in enumerate(self._all_nodes())}
        self.phi_nodes = sorted(phi.values(), key=lambda n: order.get(n.id, -1))
        # Vertices: values with a differentiable dependence on the old state or on phi.
        vd = {n.id for n in self.s_nodes if is_float(n.dtype)} | set(phi)
        for e in flat.eqns:
            if e.kind not in ("op", "alias") or (e.primitive and has_zero_derivative(e.primitive)):
                continue
            if any(isinstance(a, Node) and a.id in vd and a.id not in flat.nondiff
                   for a in e.inputs):
                vd.update(o.id for o in e.outputs if is_float(o.dtype) and o.id in dyn)
        self.vd = vd
        # Which parameter leaves each traced parameter is computed from.
        sources = {n.id: {k} for k, n in enumerate(self.p_nodes)}
        for e in flat.eqns:
            if e.kind == "alias":
                continue
            src = set()
            for a in e.inputs:
                if isinstance(a, Node):
                    src |= sources.get(a.id, set())
            if src:
                for o in e.outputs:
                    sources[o.id] = src
        self.phi_sources = [sorted(sources.get(n.id, set())) for n in self.phi_nodes]
        self._static_patterns()

    def _all_nodes(self):
        seen = list(self.p_nodes) + list(self.s_nodes) + list(self.x_nodes)
        for e in self.flat.eqns:
            seen.extend(e.outputs)
        return seen

    def _is_static(self, e) -> bool:
        return not any(o.id in self.dyn for o in e.outputs)

    def _static_patterns(self):
        """Structural non-zeros of the traced parameters, from constants known at trace time:
        static equations whose inputs are all known are evaluated (numpy), the others
        propagate patterns by :data:`PATTERN_RULES`."""
        pattern: dict[int, np.ndarray] = {}

        def pattern_of(a, v):
            if v is not None:
                return v != 0
            return None if isinstance(a, Const) else pattern.get(a.id)

        def nondiff(n, e, ins):
            return None if ins[0] is None else [np.asarray(ins[0])]

        def op(n, e, ins):
            ins = [None if v is None else np.asarray(v) for v in ins]
            if all(v is not None for v in ins):
                return [np.asarray(v) for v in jc.bind(e.primitive, e.params, *ins)]
            rule = PATTERN_RULES.get(e.primitive.name)
            if rule is not None:
                p = rule(e.outputs[0].shape, ins,
                         [pattern_of(a, v) for a, v in zip(e.inputs, ins)])
                if p is not None:
                    pattern[e.outputs[0].id] = p
            return None

        with jax.ensure_compile_time_eval():
            interpret(self.flat.eqns, {}, {"op": op, "value": op, "nondiff": nondiff},
                      select=self._is_static)
        self.patterns = {n.id: pattern.get(n.id) for n in self.phi_nodes}

    # ----- evaluation (inside jit / vmap / scan) ----------------------------------------------
    def split(self, cell):
        """The cell's parameter leaves, in the order the graph expects."""
        params, _ = eqx.partition(cell, eqx.is_inexact_array)
        return jax.tree_util.tree_leaves(params)

    def values(self, p_leaves, s_leaves, x_leaves, *, phi=None, perturb=None,
               hoisted=None) -> dict:
        """Every value of the step: ``{node id: value}``.

        **Arguments:**

        - `hoisted`: optional ``(plan, values)``: the input-only part of the step
          (:func:`~snnplast.engine.plan_hoist`) already evaluated (:meth:`hoisted_values`);
          its equations are skipped and its values read.

        - `phi`: optional ``{p: value}``: traced parameters used as given (in the shapes of
          :meth:`phi_of`) instead of being computed from `p_leaves`, so that a derivative
          with respect to `p_leaves` leaves them out.
        - `perturb`: optional ``{a: value}`` added to new state leaf ``a`` where it is
          computed; the cotangent of a zero perturbation is ``d output / d new_state[a]``
          through everything downstream of it (:func:`direct_cut`).
        """
        env: dict = {}
        for nodes, vals in ((self.p_nodes, p_leaves), (self.s_nodes, s_leaves),
                            (self.x_nodes, self._inputs(x_leaves))):
            for n, v in zip(nodes, vals):
                env[n.id] = v
        select = None
        if hoisted is not None:
            plan, vals = hoisted
            env.update(zip(plan.needed, vals))
            select = lambda e: id(e) not in plan.skip
        rules = self._gated(EVALUATE, env)
        if not phi and not perturb:
            return interpret(self.flat.eqns, env, rules, select=select)
        given = {self.phi_nodes[q].id: jnp.reshape(v, self.phi_shapes_orig[q])
                 for q, v in (phi or {}).items()}
        shift = {self.state_out[a].id: d for a, d in (perturb or {}).items()}
        env.update({k: v for k, v in given.items() if k in env})

        def overriding(rule):
            def run(n, e, ins):
                outs = rule(n, e, ins)
                if outs is None:
                    return None
                outs = list(outs)
                for k, o in enumerate(e.outputs):
                    if o.id in given:
                        outs[k] = given[o.id]
                    elif o.id in shift:
                        outs[k] = outs[k] + shift[o.id]
                return outs

            return run

        return interpret(self.flat.eqns, env,
                         {kind: overriding(rule) for kind, rule in rules.items()},
                         select=select)

    def _inputs(self, x_leaves) -> list:
        """The input leaves in the dtypes the step was traced for (see ``input_dtype``)."""
        if self.input_dtype is None:
            return list(x_leaves)
        return cast_floats(list(x_leaves), self.input_dtype)

    def hoist_plan(self, fixed) -> HoistPlan | None:
        """The input-only part of the step (:func:`~snnplast.engine.plan_hoist`), cached per
        `fixed` (traced parameters held fixed in the step's derivatives; ``None``: all)."""
        key = None if fixed is None else frozenset(fixed)
        if key not in self._hoist_plans:
            self._hoist_plans[key] = plan_hoist(self, key)
        return self._hoist_plans[key]

    def hoisted_values(self, plan: HoistPlan, p_leaves, x_leaves) -> list:
        """The values of the input-only part of one step (``plan.needed`` in order), from the
        parameters and that step's input alone. Batch it over many steps with ``vmap``."""
        env = {n.id: v for n, v in zip(self.p_nodes, p_leaves)}
        env.update({n.id: v for n, v in zip(self.x_nodes, self._inputs(x_leaves))})
        interpret(self.flat.eqns, env, when_known(EVALUATE),
                  select=lambda e: self._is_static(e) or id(e) in plan.skip)
        return [env[i] for i in plan.needed]

    def outputs(self, env: dict):
        """The step's output (as the cell returns it) from the values of :meth:`values`."""
        leaves = [a.value if isinstance(a, Const) else env[a.id] for a in self.out]
        return jax.tree_util.tree_unflatten(self.out_def, leaves)

    def jacobians(self, p_leaves, s_leaves, x_leaves, *, order="auto", output_map=False,
                  env: dict | None = None):
        """The step's compressed Jacobians (and values). Pass ``env`` (from :meth:`values`) to
        reuse a forward pass already computed, e.g. under ``jax.vjp``."""
        if env is None:
            env = self.values(p_leaves, s_leaves, x_leaves)
        read = lambda a: a.value if isinstance(a, Const) else env[a.id]
        graph = Graph()
        vd = self.vd
        topo = []
        for succ, pred, jac in self._edges(env, topo):
            graph.add_edge(succ, pred, jac)

        # Outputs get vertices of their own, so that one value feeding two outputs (or an
        # output feeding the next step's computation) is never eliminated away.
        state_v, sources = {}, {}
        for a, node in enumerate(self.state_out):
            if isinstance(node, Node) and node.id in vd:
                state_v[a] = ("state_out", a)
                sources[a] = node.id
                graph.add_edge(state_v[a], node.id, diagonal(self.rshape(node),
                                                             jnp.ones((), self.jac_dtype),
                                                             const=True))
        out_v = {}
        if output_map:
            for k, node in enumerate(self.out):
                if isinstance(node, Node) and node.id in vd:
                    out_v[k] = ("out", k)
                    graph.add_edge(out_v[k], node.id, diagonal(self.rshape(node),
                                                               jnp.ones((), self.jac_dtype),
                                                               const=True))
        inputs = {n.id for n in self.s_nodes} | {n.id for n in self.phi_nodes}
        seen = set()
        topo = [v for v in topo if not (v in seen or seen.add(v))]
        keep = inputs | set(sources.values())
        cost = eliminate(graph, [v for v in topo if v not in keep], order)

        # A new state leaf whose only predecessors are other new state leaves is derived.
        source_leaf = {}
        for a, src in sources.items():
            source_leaf.setdefault(src, a)
        derived, K = [], {}
        for a, src in sources.items():
            if src in inputs or source_leaf[src] != a:
                continue
            preds = graph.preds[src]
            if preds and all(p in source_leaf and p != src for p in preds):
                derived.append(a)
        derived = [a for a in derived
                   if all(source_leaf[p] not in derived for p in graph.preds[sources[a]])]
        for a in derived:
            for p in graph.preds[sources[a]]:
                K[(a, source_leaf[p])] = graph.edges[(sources[a], p)]
        remaining = [v for v in topo if v in set(sources.values()) and v not in inputs]
        for k, c in eliminate(graph, remaining, order).items():
            cost[k] = cost.get(k, 0) + c

        for key in list(graph.edges):
            graph.edges[key] = sharpen(graph.edges[key])
        for key in list(K):
            K[key] = sharpen(K[key])
        s_ids = {n.id: b for b, n in enumerate(self.s_nodes)}
        p_ids = {n.id: p for p, n in enumerate(self.phi_nodes)}
        H, F, out_H, out_F = {}, {}, {}, {}
        for (succ, pred), jac in graph.edges.items():
            if isinstance(succ, tuple) and succ[0] == "state_out":
                target_h, target_f, a = H, F, succ[1]
            elif isinstance(succ, tuple) and succ[0] == "out":
                target_h, target_f, a = out_H, out_F, succ[1]
            else:
                continue
            if pred in s_ids:
                target_h[(a, s_ids[pred])] = jac
            elif pred in p_ids:
                target_f[(a, p_ids[pred])] = jac
        return StepJacobians(
            new_state=[read(n) for n in self.state_out],
            output=[read(n) for n in self.out],
            phi=[jnp.reshape(env[n.id], n.shape) for n in self.phi_nodes],
            H=H, F=F, K=K, derived=tuple(sorted(derived)), out_H=out_H, out_F=out_F, cost=cost,
        )

    # ----- the edges of the step graph ------------------------------------------------------------
    def rshape(self, node) -> tuple[int, ...]:
        """The refined shape of ``node`` (its dims split into their sub-dims, row-major)."""
        view = self.views.get(node.id)
        return tuple(node.shape) if view is None else tuple(s for v in view for s in v)

    def view(self, a) -> tuple:
        if isinstance(a, Node) and a.id in self.views:
            return self.views[a.id]
        return tuple((s,) for s in jnp.shape(a.value if isinstance(a, Const) else a))

    def _edges(self, env, topo, *, refined=True, seen_eqns=None) -> list:
        """``(succ, pred, SJac)`` for every differentiable edge of the step, in refined views
        (``refined=False``: in the cell's own shapes, to find the views); `topo` gets the
        vertices in program order, `seen_eqns` the equations that gave edges."""
        vd, dyn = self.vd, self.dyn
        edges = []

        def alias(n_eqn, e, ins):
            src = e.inputs[0]
            if isinstance(src, Node) and src.id in vd:
                o = e.outputs[0]
                shape = self.rshape(o) if refined else o.shape
                edges.append((o.id, src.id, diagonal(shape, jnp.ones((), self.jac_dtype),
                                                     const=True)))
            topo.extend(o.id for o in e.outputs if o.id in vd)

        def op(n_eqn, e, ins):
            wrt = [isinstance(a, Node) and a.id in vd and a.id not in self.flat.nondiff
                   for a in e.inputs]
            if not any(wrt):
                return
            if seen_eqns is not None:
                seen_eqns.append(n_eqn)
            ctx = RuleContext(
                e.primitive, e.params, ins, [env[o.id] for o in e.outputs],
                wrt, [isinstance(a, Const) or a.id not in dyn for a in e.inputs],
                [self.patterns.get(a.id) if isinstance(a, Node) else None for a in e.inputs],
            )
            in_views = [self.view(a) for a in e.inputs]
            out_views = [self.view(o) for o in e.outputs]
            if refined and n_eqn in self.view_rules:
                rows = self.view_rules[n_eqn](ctx, in_views, out_views)
            else:
                rows = rule_for(e.primitive, self.owner)(ctx)
                if refined:
                    rows = [[None if j is None else refine(j, ov, iv)
                             for j, iv in zip(row, in_views)]
                            for row, ov in zip(rows, out_views)]
            taken = self._taken(e, env)
            for o, row in zip(e.outputs, rows):
                if o.id not in vd:
                    continue
                for k, (a, jac) in enumerate(zip(e.inputs, row)):
                    if jac is not None and wrt[k]:
                        jac = with_dtype(jac, self.jac_dtype)
                        edges.append((o.id, a.id, jac if taken is None else taken(jac)))
            topo.extend(o.id for o in e.outputs if o.id in vd)

        interpret(self.flat.eqns, env, {"alias": alias, "op": op},
                  select=lambda e: any(o.id in vd for o in e.outputs))
        return edges

    def _gated(self, rules: dict, env: dict) -> dict:
        """`rules` for evaluating the step, with the inputs of each equation inside a cond's
        branch passed through ``select(taken, a, stop_gradient(a))``: the same values, but
        reverse mode (the learning signal is a VJP of the step) hands an untaken branch's
        inputs an exact zero cotangent, never the NaN that ``0 * inf`` makes inside it."""
        if not any(e.guard for e in self.flat.eqns):
            return rules
        evaluate = rules["op"]

        def op(n, e, ins):
            if e.guard and all(env.get(index.id) is not None for index, _ in e.guard):
                taken = _all_taken(e, env)
                ins = [v if not isinstance(a, Node) or v is None or not is_float(jnp.result_type(v))
                       else jax.lax.select(taken, v, jax.lax.stop_gradient(v))
                       for a, v in zip(e.inputs, ins)]
            return evaluate(n, e, ins)

        return {**rules, "op": op}

    def _taken(self, e, env):
        """For an equation inside branches of a ``cond`` (``e.guard``): a function that keeps
        a Jacobian where every enclosing branch is taken and puts exact zeros elsewhere (a
        select, never a product with a 0/1 mask: an untaken branch's Jacobian may hold inf or
        NaN). ``None`` outside any branch."""
        if not e.guard:
            return None
        taken = _all_taken(e, env)
        static = all(index.id not in self.dyn for index, _ in e.guard)

        def keep(j: SJac) -> SJac:
            if isinstance(j.val, Abstract):
                return j
            val = jnp.where(taken, j.val, jnp.zeros((), jnp.result_type(j.val)))
            return dataclasses.replace(j, val=val, const=j.const and static)

        return keep

    # ----- view refinement (trace time) ---------------------------------------------------------
    def _refine_views(self, p_leaves, s_leaves, x_leaves):
        """Split dims into the finest sub-dims that every reshape, split, slice and
        concatenation agrees with (see :mod:`._views`), and record which of those ops keep a
        dense block because no common refinement exists."""
        structure, eqns = [], []

        def probe(p, s, xx):
            env = self.values(p, s, xx)
            for succ, pred, jac in self._edges(env, [], refined=False, seen_eqns=eqns):
                structure.append((succ, pred, jac.ties, jac.out_shape, jac.in_shape))
            return 0

        jax.eval_shape(probe, p_leaves, s_leaves, x_leaves)
        solver = ViewSolver()
        for succ, pred, ties, out_shape, in_shape in structure:
            for d, size in enumerate(out_shape):
                solver.add((succ, d), size)
            for d, size in enumerate(in_shape):
                solver.add((pred, d), size)
            for o, i in ties:
                solver.union((succ, o), (pred, i))
        # A state leaf is one value across steps: its old and new views are one, and they stay
        # the cell's own shape (the online learner holds states as the cell returns them).
        for node, new in zip(self.s_nodes, self.state_out):
            for d, size in enumerate(node.shape):
                solver.add((node.id, d), size)
                if isinstance(new, Node):
                    solver.add((new.id, d), size)
                    solver.union((node.id, d), (new.id, d))
                solver.freeze((node.id, d))
        self.view_report = []
        for n_eqn in dict.fromkeys(eqns):
            e = self.flat.eqns[n_eqn]
            name = e.primitive.name
            if name not in VIEW_RULES:
                continue
            in_shapes = [tuple(a.shape) for a in e.inputs]
            out_shapes = [tuple(o.shape) for o in e.outputs]
            if name == "reshape" and _only_size_one(in_shapes[0], out_shapes[0]):
                continue  # already ties
            constraint_of, rule = VIEW_RULES[name]
            in_ids = [a.id if isinstance(a, Node) else ("const", n_eqn, k)
                      for k, a in enumerate(e.inputs)]
            con = constraint_of(e.params, in_shapes, out_shapes, in_ids,
                                [o.id for o in e.outputs])
            what = f"{name} {_shapes(in_shapes)} -> {_shapes(out_shapes)}"
            if con is None:
                self.view_report.append((what, "its offsets and sizes share no factor"))
                continue
            for key, size in con.keys():
                solver.add(key, size)
            reason = solver.offer(con)
            if reason is None:
                self.view_rules[n_eqn] = rule
            else:
                self.view_report.append((what, reason))
        nodes = {n.id: n for n in self._all_nodes()}
        for node_id, node in nodes.items():
            view = tuple(solver.view((node_id, d), size) for d, size in enumerate(node.shape))
            if any(len(v) > 1 for v in view):
                self.views[node_id] = view
        self.phi_shapes_orig = [n.shape for n in self.phi_nodes]
        self.phi_nodes = [Node(self.rshape(n), n.dtype, n.name, id=n.id)
                          for n in self.phi_nodes]

    # ----- traced parameters back to the cell's parameters ------------------------------------
    def direct_cut(self, p: int):
        """The state leaves through which traced parameter `p` acts on this step's outputs
        (:func:`direct_cut`), or ``None``."""
        if p not in self._cuts:
            self._cuts[p] = direct_cut(self, p)
        return self._cuts[p]

    def phi_of(self, p_leaves):
        """The traced parameters as a function of the parameter leaves (the static part)."""
        env = {n.id: v for n, v in zip(self.p_nodes, p_leaves)}
        interpret(self.flat.eqns, env, when_known(self._gated(EVALUATE, env)),
                  select=self._is_static)
        return [jnp.reshape(env[n.id], n.shape) for n in self.phi_nodes]

    def phi_pullback(self, p_leaves, grad_phi) -> list:
        """``d loss / d parameter leaves`` from ``d loss / d phi`` (the traced parameters).

        A gradient accumulated in the traces' dtype is cast to each traced parameter's own
        dtype first (a ``w.astype(bfloat16)`` in the step makes a bfloat16 one): JAX's reverse
        mode rounds the cotangent there too, and refuses one of another dtype.
        """
        _, pullback = jax.vjp(self.phi_of, p_leaves)
        (grads,) = pullback([jnp.asarray(g, n.dtype) for g, n in zip(grad_phi, self.phi_nodes)])
        return grads


def with_dtype(j: SJac, dtype) -> SJac:
    """`j` with its values in `dtype` (numpy values stay numpy: constants known at trace time)."""
    val = j.val
    if isinstance(val, Abstract):
        return j if val.dtype == dtype else dataclasses.replace(j, val=Abstract(val.shape, dtype))
    if val.dtype == dtype:
        return j
    val = np.asarray(val, dtype) if isinstance(val, np.ndarray) else jnp.asarray(val, dtype)
    return dataclasses.replace(j, val=val)


def _all_taken(e, env):
    """Whether every branch enclosing `e` is the one taken (a boolean scalar)."""
    return jnp.all(jnp.stack([jnp.asarray(env[index.id]) == k for index, k in e.guard]))


def _only_size_one(in_shape, out_shape) -> bool:
    return [d for d in in_shape if d != 1] == [d for d in out_shape if d != 1]


def _shapes(shapes) -> str:
    return ", ".join("(" + ", ".join(map(str, s)) + ")" for s in shapes)
