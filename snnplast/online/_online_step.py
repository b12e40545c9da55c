"""One online step for a batch: learning signal, gradient contribution, trace update.

``OnlineStep`` binds a cell structure, a transport policy and a per-step loss. Its
:meth:`step` consumes one time step of a batch and returns the new carry; everything is traced
once and runs inside ``lax.scan`` with no Python work per step. Memory is independent of the
sequence length: the carry holds the state, the traces and the gradient accumulators only.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..engine import (
    SJac,
    add,
    compose,
    contract_batch,
    materialize,
    scale,
    state_dtype,
    state_names,
    step_graph,
    traced_param_names,
)
from ..policies import Policy
from ._fixed_start import fixed_start, fixed_start_names, without_fixed_start
from ._traces import TraceStep, policy_context


class Carry(NamedTuple):
    state: list  # state leaves, each [B, ...]
    traces: dict  # (a, p) -> SJac with val [B, ...]
    k_prev: dict  # (z, v) -> SJac with val [B, ...]: same-step Jacobians of derived leaves
    policy_state: object
    grad_phi: list  # accumulated d loss / d phi (traced parameters)
    grad_direct: list  # accumulated immediate d loss / d theta (parameter leaves)
    loss: jax.Array
    out_sum: object  # outputs summed over time, [B, ...] (class scores of a readout)
    t: jax.Array
    # a -> [B, ...]: d loss_t / d state_t[a] of the last step, for the leaves that cut a
    # parameter's direct term (OnlineStep.direct_cuts): it meets the trace G_t at the next step.
    pending: dict


class OnlineStep:
    def __init__(self, model, x_example, policy: Policy, loss):
        if not isinstance(policy, Policy):
            raise TypeError(f"method must be 'bptt' or a transport policy such as "
                            f"snnplast.Diagonal(), got {policy!r}")
        # A learned initial state is computed in the first step, so traces start at zero.
        # Names for messages and tables ("a <- v", not "[0][2]"), of the model's own leaves.
        self.state_names = fixed_start_names(model, state_names(model))
        original = model
        model = fixed_start(model)
        self.graph = step_graph(model, x_example)
        # The wrapper adds no parameter: the model's own paths name the traced parameters.
        self.param_names = traced_param_names(original, self.graph)
        self.policy = policy
        self.loss = loss
        self.context = policy_context(model, self.graph)
        p = self.graph.split(model)
        s = jax.tree_util.tree_leaves(model.initial_state())
        xx = jax.tree_util.tree_leaves(x_example)
        captured = {}

        def probe(p, s, xx):
            res = self.graph.jacobians(p, s, xx)
            captured["res"] = res
            return res.new_state

        jax.eval_shape(probe, p, s, xx)
        self._p_example, self._s_example, self._x_example = p, s, xx
        res = captured["res"]
        self.derived = res.derived
        self.k_struct = {k: (j.out_shape, j.in_shape, j.ties, tuple(j.val_keys),
                             tuple(j.key_size(q) for q in j.val_keys))
                         for k, j in res.K.items()}
        self.traces = TraceStep(self.graph, policy, self.context, self.derived)
        pstate = policy.init_state(self.context, jax.random.PRNGKey(0))
        self.traces.fix_structure(p, s, xx, pstate)
        self.dtype = state_dtype(s)

    # ----- carry ---------------------------------------------------------------------------------
    def init(self, model, batch: int, key) -> Carry:
        model = fixed_start(model)
        s0 = jax.tree_util.tree_leaves(model.initial_state())
        state = [jnp.broadcast_to(a, (batch,) + jnp.shape(a)) for a in s0]
        tr = {k: _batched(v, batch) for k, v in self.traces.zeros(self.dtype).items()}
        kp = {k: SJac(o, i, ties, jnp.zeros((batch,) + shape, self.dtype), keys, False)
              for k, (o, i, ties, keys, shape) in self.k_struct.items()}
        phi_shapes = [n.shape for n in self.graph.phi_nodes]
        p = self.graph.split(model)
        return Carry(
            state=state, traces=tr, k_prev=kp,
            policy_state=self.policy.init_state(self.context, key),
            grad_phi=[jnp.zeros(s, self.dtype) for s in phi_shapes],
            grad_direct=[jnp.zeros_like(a) for a in p],
            loss=jnp.zeros((), self.dtype), out_sum=self._zero_outputs(model, batch),
            t=jnp.zeros((), jnp.int32),
            pending={a: jnp.zeros((batch,) + self.graph.s_shapes[a], self.dtype)
                     for a in self._cut_leaves(self.direct_cuts())},
        )

    def _zero_outputs(self, model, batch):
        x = jax.tree_util.tree_unflatten(
            self.graph.x_def, [jnp.zeros(n.shape, n.dtype) for n in self.graph.x_nodes])
        _, out = jax.eval_shape(lambda s, xx: model(s, xx), model.initial_state(), x)
        return jax.tree_util.tree_map(lambda o: jnp.zeros((batch,) + o.shape, o.dtype), out)

    def reset_gradients(self, carry: Carry) -> Carry:
        return carry._replace(
            grad_phi=[jnp.zeros_like(g) for g in carry.grad_phi],
            grad_direct=[jnp.zeros_like(g) for g in carry.grad_direct],
            loss=jnp.zeros_like(carry.loss),
            out_sum=jax.tree_util.tree_map(jnp.zeros_like, carry.out_sum),
            pending={a: jnp.zeros_like(v) for a, v in carry.pending.items()},
        )

    # ----- one step ------------------------------------------------------------------------------
    # ----- the input-only part of the step, for many steps at once ----------------------------
    def hoist_plan(self):
        """The part of the step that depends on the input and on parameters this step's
        derivatives hold fixed only (:func:`snnplast.engine.plan_hoist`), or ``None``.

        The learning signal (:meth:`_learning_signal`) holds the cut parameters fixed
        (:meth:`direct_cuts`), and differentiates no parameter when every one is cut."""
        cuts = self.direct_cuts()
        fixed = None if len(cuts) == len(self.graph.phi_nodes) else set(cuts)
        return self.graph.hoist_plan(fixed)

    def hoist(self, p_leaves, x_chunk):
        """The input-only values of ``K`` steps of a batch at once (one batched product over
        the ``B K`` samples instead of one per step).

        **Arguments:** `x_chunk`: the inputs of the steps, leaves ``[B, K, ...]``.

        **Returns:** a list of values ``[K, B, ...]`` (:attr:`HoistPlan.needed`'s order), or
        ``None`` without a plan; step ``i`` reads index ``i`` of the first axis.
        """
        plan = self.hoist_plan()
        if plan is None:
            return None
        leaves = jax.tree_util.tree_leaves(x_chunk)
        b, k = leaves[0].shape[:2]
        # Step-major, so that each step reads one contiguous [B, ...] slice.
        flat = [jnp.swapaxes(a, 0, 1).reshape((k * b,) + a.shape[2:]) for a in leaves]
        vals = jax.vmap(lambda xx: self.graph.hoisted_values(plan, p_leaves, xx))(flat)
        return [v.reshape((k, b) + v.shape[1:]) for v in vals]

    def _learning_signal(self, p_leaves, carry: Carry, x_t, y_t, direct=None, pre=None):
        """The batch's loss at this step and its reverse-mode products (this step only):
        ``d loss / d theta`` (direct) and ``d loss / d state_{t-1}``, with the step's values.

        `direct`: optional ``(cuts, phi)`` (:meth:`direct_cuts`, the traced parameters'
        values): the direct term of a traced parameter ``p`` in ``cuts`` is left out of
        ``d loss / d theta`` and returned as ``e[a] = d loss / d new_state[a]`` for the leaves
        ``a`` of its cut instead (``None`` when every traced parameter is cut: ``d_p`` is
        ``None``).

        **Returns:** ``(loss, d_p, outputs, d_s, env, e)``.
        """
        lval, outs, env, vjp = self.signal_vjp(p_leaves, carry.state, x_t, y_t, direct, pre)
        d_p, d_s, e = self.apply_signal(vjp, lval)
        return lval, d_p, outs, d_s, env, e

    def signal_vjp(self, p_leaves, state, x_t, y_t, direct=None, pre=None):
        """The forward pass of the batch's step and its loss, with the reverse-mode function
        of the learning signal not yet applied (:meth:`apply_signal` applies it): a pytree
        whose leaves are the step's residuals, so that many steps' products can be taken at
        once (:mod:`snnplast.online._late_signal`). Arguments as :meth:`_learning_signal`.

        **Returns:** ``(loss, outputs, env, vjp)``.
        """
        g = self.graph
        x_leaves = jax.tree_util.tree_leaves(x_t)
        cuts, phi = direct if direct is not None else ({}, None)
        fixed = {q: phi[q] for q in cuts}
        leaves = sorted(set().union(*cuts.values())) if cuts else []
        batch = state[0].shape[0] if state else x_leaves[0].shape[0]
        zeros = {a: jnp.zeros((batch,) + g.s_shapes[a], self.dtype) for a in leaves}

        # One forward pass of the step serves both the learning signal (reverse mode, this
        # step only) and the Jacobian blocks of the traces: its values ride along as aux.
        plan = self.hoist_plan() if pre is not None else None

        def batch_loss(p, s_b, d_b):
            def one(s, xx, y, d, h):
                hoisted = None if h is None else (plan, h)
                env = g.values(p, s, xx, phi=fixed, perturb=d, hoisted=hoisted)
                out = g.outputs(env)
                return self.loss(out, y), (out, env)

            losses, aux = jax.vmap(one)(s_b, x_leaves, y_t, d_b, pre)
            return jnp.sum(losses), aux

        if len(cuts) < len(g.phi_nodes):
            lval, vjp, (outs, env) = jax.vjp(batch_loss, p_leaves, state, zeros, has_aux=True)
        else:
            # Every parameter acts through the new state: no weight gradient at this step.
            lval, vjp, (outs, env) = jax.vjp(lambda s_b, d_b: batch_loss(p_leaves, s_b, d_b),
                                             state, zeros, has_aux=True)
        return lval, outs, env, vjp

    def apply_signal(self, vjp, lval):
        """``(d_p, d_s, e)`` from :meth:`signal_vjp`'s function (``d_p`` ``None`` when every
        traced parameter is cut)."""
        grads = vjp(jnp.ones((), lval.dtype))
        if len(grads) == 3:
            return grads
        d_s, e = grads
        return None, d_s, e

    def _f_keys(self) -> set:
        captured = {}

        def probe(p, s, xx):
            captured["F"] = set(self.traces.blocks(p, s, xx)[2])
            return 0.0

        jax.eval_shape(probe, self._p_example, self._s_example, self._x_example)
        return captured["F"]

    def step(self, p_leaves, carry: Carry, x_t, y_t, key, phi=None) -> Carry:
        """One step of the recursion for a batch.

        The direct term of a parameter cut by new state leaves (:meth:`direct_cuts`) rides on
        the trace contraction: with ``G_t = A_t G_{t-1} + F_t`` (``A_t = lam H~_t``), the
        direct term ``e_t F_t`` is ``e_t G_t - (e_t A_t) G_{t-1}``, so step ``t`` contracts
        ``G_{t-1}`` with ``L_t + e_{t-1} - e_t A_t`` (one product per traced pair, as the
        trace term alone) and no weight gradient is formed; ``e_t`` waits in
        ``carry.pending`` for ``G_t`` (:meth:`gradients` adds the last one).

        `phi`: the traced parameters' values (``graph.phi_of(p_leaves)``), computed once for
        a sequence instead of at every step.
        """
        return self.step_terms(p_leaves, carry, x_t, y_t, key, phi)[0]

    def step_terms(self, p_leaves, carry: Carry, x_t, y_t, key, phi=None, defer=frozenset(),
                   pre=None):
        """:meth:`step`, except that the contractions of the traced pairs in `defer` are
        returned instead of added to ``grad_phi`` (:func:`snnplast.online.contract_terms`
        adds many steps' terms in one product).

        **Returns:** ``(carry, terms)`` with ``terms = (signals, traces)``: ``traces``
        ``{(a, q): G_{t-1}}`` for the pairs in `defer`, ``signals`` the row vectors ``[B, ...]``
        they meet, one per distinct kind (:meth:`signal_kinds`) in sorted order of the kinds
        the deferred pairs use. `pre`: this step's values of :meth:`hoist` (or ``None``).
        """
        x_leaves = jax.tree_util.tree_leaves(x_t)
        cuts = self.direct_cuts()
        direct = None
        if cuts:
            direct = (cuts, self.graph.phi_of(p_leaves) if phi is None else phi)
        lval, d_p, outs, d_s, env, e = self._learning_signal(p_leaves, carry, x_t, y_t, direct,
                                                             pre)
        ctx = self.context.with_state(carry.policy_state)
        cut_sets = sorted(set(cuts.values()))

        def per_sample(s, tr, kp, xx, ds, env, e):
            ls = self._fold_derived(ds, kp)
            new_s, H, F, K = self.traces.blocks(p_leaves, s, xx, env=env)
            Ht = self.traces.carried(H, kp, ctx)
            rows = {c: self._rows_through({a: e[a] for a in c}, Ht) for c in cut_sets}
            return new_s, self.traces.update(tr, Ht, F), K, ls, rows

        new_s, new_tr, new_k, ls, rows = jax.vmap(per_sample)(
            carry.state, carry.traces, carry.k_prev, x_leaves, d_s, env, e)
        grad_phi = list(carry.grad_phi)
        kinds = self.signal_kinds()
        signals = self.signals(ls, carry.pending, rows)
        deferred = {}
        for (a, q), tr in carry.traces.items():
            if (a, q) in defer:
                deferred[(a, q)] = tr
            else:
                grad_phi[q] = grad_phi[q] + contract_batch(signals[kinds[(a, q)]], tr)
        needed = sorted({kinds[k] for k in deferred})
        terms = ([signals[k] for k in needed], deferred)
        t = carry.t + 1
        return Carry(
            state=list(new_s), traces=new_tr, k_prev=new_k,
            policy_state=self.policy.next_state(carry.policy_state, self.context, t, key),
            grad_phi=grad_phi,
            grad_direct=(carry.grad_direct if d_p is None else
                         [a + b for a, b in zip(carry.grad_direct, d_p)]),
            loss=carry.loss + lval,
            out_sum=jax.tree_util.tree_map(jnp.add, carry.out_sum, outs), t=t,
            pending={a: e[a] for a in carry.pending},
        ), terms

    def signal_kinds(self) -> dict:
        """``{(a, q): (a, cut)}`` for every traced pair: the row its trace ``G_{t-1}`` meets
        depends on the leaf ``a`` and on the cut of ``q``'s direct term (``None`` when not
        cut), so the pairs of one leaf and one cut (a layer's ``W_in`` and ``W_rec``) share
        it. Sorted: the cuts are tuples of leaves, ``None`` comes first as ``()``."""
        cuts = self.direct_cuts()
        return {(a, q): (a, cuts.get(q, ())) for (a, q) in self.traces.structure}

    def signals(self, ls: dict, before: dict, rows: dict) -> dict:
        """The row vectors that meet the traces ``G_{t-1}``, one per kind
        (:meth:`signal_kinds`): the learning signal ``ls[a]``, plus, for a leaf that cuts the
        parameter's direct term, the last step's ``e_{t-1}[a]`` (`before`) and minus
        ``(e_t A_t)[a]`` (`rows[cut]`, :meth:`_rows_through`). Any leading axes (batch, steps)."""
        out = {}
        for kind in sorted(set(self.signal_kinds().values())):
            a, cut = kind
            signal = ls[a]
            if cut:
                if a in cut:
                    signal = signal + before[a]
                if a in rows[cut]:
                    signal = signal - rows[cut][a]
            out[kind] = signal
        return out

    def _rows_through(self, rows: dict, Ht: dict) -> dict:
        """``sum_a rows[a] @ (lam H~[a, b])`` for the leaves ``b`` whose traces the update
        carries (one sample): ``rows`` times the ``A_t`` of :meth:`TraceStep.update`."""
        lam = self.policy.lam
        out: dict = {}
        if lam == 0.0:
            return out
        for (a, b), products in Ht.items():
            if a not in rows:
                continue
            for product in products:
                r = SJac((), product[0].out_shape, frozenset(), rows[a],
                         tuple((None, i) for i in range(len(product[0].out_shape))), False)
                for factor in product:
                    r = compose(r, factor)
                term = materialize(r) * lam
                out[b] = term if b not in out else out[b] + term
        return out

    def direct_cuts(self) -> dict:
        """``{p: leaves}`` for the traced parameters whose direct term (``d loss_t / d phi_p``
        with the old state held) is ``sum_a e_t[a] F_t[a, p]`` over new state leaves ``a``
        (:func:`snnplast.engine.direct_cut`) whose pairs ``(a, p)`` all carry a trace that the
        update keeps exactly (``G_t = A_t G_{t-1} + F_t``: no ``restrict_trace``). For these
        the step recursion (:meth:`step`) and the blocks (:class:`BlockedStep`) form the
        direct term in the trace's product instead of a weight gradient at every step. A pair
        without a trace (a readout's state and the layer below's weight under Diagonal) would
        need its immediate influence recorded, often larger than the weight: not cut.
        """
        if not hasattr(self, "_direct_cuts"):
            cuts = {}
            if not self.restricts_trace():
                F = self._f_keys()
                for q in range(len(self.graph.phi_nodes)):
                    c = self.graph.direct_cut(q)
                    if c is not None and all(a in self.traces.primary and (a, q) in F
                                             and (a, q) in self.traces.structure for a in c):
                        cuts[q] = c
            self._direct_cuts = cuts
        return self._direct_cuts

    def restricts_trace(self) -> bool:
        """Whether the policy masks traces (``restrict_trace``): then ``G_t`` is not
        ``A_t G_{t-1} + F_t`` and direct terms are formed at every step."""
        return type(self.policy).restrict_trace is not Policy.restrict_trace

    @staticmethod
    def _cut_leaves(cuts: dict) -> list:
        return sorted(set().union(*cuts.values())) if cuts else []

    def record(self, p_leaves, carry: Carry, x_t, y_t, key, direct=None, pre=None, late=None):
        """One step of a block (:class:`BlockedStep`): everything :meth:`step` does except the
        trace update and its contraction, which the block does at once.

        `direct`: optional ``(cuts, phi)`` as in :meth:`_learning_signal`: the direct terms of
        the cut parameters are left to the block (recorded as ``E``), not accumulated here.

        **Returns:** ``(carry, (L, A, F, E))``: the carry with state, direct gradients, loss
        and outputs advanced (traces untouched), and the step's records, each ``[B, ...]``:
        the learning signal ``L[a]`` of the primary leaves (``d loss_t / d state_{t-1}``), the
        carried per-unit blocks ``A[(a, b)]`` (``lam * H~``, one SJac per pair), the
        immediate influences ``F[(a, p)]`` of the traced pairs, and ``E[a] = d loss_t /
        d state_t[a]`` for the leaves of the cuts.
        """
        if late is None:
            lval, d_p, outs, d_s, env, e = self._learning_signal(p_leaves, carry, x_t, y_t,
                                                                 direct, pre)
        else:
            phi = None if direct is None else direct[1]
            lval, outs, env, residuals = late.forward(p_leaves, phi, carry.state, x_t, y_t, pre)
            d_p = d_s = e = None
        x_leaves = jax.tree_util.tree_leaves(x_t)
        ctx = self.context.with_state(carry.policy_state)
        pairs = self.traces.structure

        def per_sample(s, kp, xx, ds, env):
            new_s, H, F, K = self.traces.blocks(p_leaves, s, xx, env=env)
            A = self.per_unit(self.traces.carried(H, kp, ctx))
            L = None
            if ds is not None:
                ls = self._fold_derived(ds, kp)
                L = {a: ls[a] for a in self.traces.primary}
            return new_s, K, (L, A, {k: v for k, v in F.items() if k in pairs})

        new_s, new_k, (L, A, F) = jax.vmap(per_sample)(carry.state, carry.k_prev, x_leaves,
                                                       d_s, env)
        if late is not None:
            L = (residuals, carry.k_prev)
        t = carry.t + 1
        grad_direct = carry.grad_direct
        if d_p is not None:
            grad_direct = [a + b for a, b in zip(carry.grad_direct, d_p)]
        return carry._replace(
            state=list(new_s), k_prev=new_k,
            policy_state=self.policy.next_state(carry.policy_state, self.context, t, key),
            grad_direct=grad_direct,
            loss=carry.loss + lval,
            out_sum=jax.tree_util.tree_map(jnp.add, carry.out_sum, outs), t=t,
        ), (L, A, F, e)

    def per_unit(self, Ht) -> dict:
        """The carried products multiplied out and summed, times ``lam``: one SJac per pair of
        leaves. Meant for per-unit (elementwise) factors, whose products stay elementwise."""
        lam = self.policy.lam
        out = {}
        if lam == 0.0:
            return out
        for key, products in Ht.items():
            total = None
            for product in products:
                j = product[0]
                for factor in product[1:]:
                    j = compose(j, factor)
                total = j if total is None else add(total, j)
            if total is not None:
                out[key] = total if lam == 1.0 else scale(total, lam)
        return out

    def carried_structure(self) -> dict:
        """The carried products ``H~[(a, b)]`` of one sample, as shapes (trace time)."""
        p = self._p_example
        s = self._s_example
        xx = self._x_example
        pstate = self.policy.init_state(self.context, jax.random.PRNGKey(0))
        kp = {k: SJac(o, i, ties, jnp.zeros(shape, self.dtype), keys, False)
              for k, (o, i, ties, keys, shape) in self.k_struct.items()}
        captured = {}

        def probe(p, s, xx, kp):
            _, H, _, _ = self.traces.blocks(p, s, xx)
            captured["Ht"] = self.traces.carried(H, kp, self.context.with_state(pstate))
            return 0.0

        jax.eval_shape(probe, p, s, xx, kp)
        return captured["Ht"]

    def carried_example(self) -> dict:
        """:meth:`per_unit` of :meth:`carried_structure`, as shapes."""
        Ht = self.carried_structure()
        return jax.eval_shape(self.per_unit, Ht)

    def _fold_derived(self, ds, kp):
        """Learning signal of the primary leaves: a derived leaf's signal flows back through its
        same-step Jacobian ``K`` (``G_z = K_zv G_v`` needs no trace of its own)."""
        ls = list(ds)
        for (z, v), k in kp.items():
            row = SJac((), k.out_shape, frozenset(), ds[z],
                       tuple((None, i) for i in range(len(k.out_shape))), False)
            ls[v] = ls[v] + materialize(compose(row, k))
        return ls

    # ----- read out ------------------------------------------------------------------------------
    def gradients(self, p_leaves, carry: Carry) -> list:
        """d loss / d theta accumulated so far, for the cell's parameter leaves."""
        grad_phi = list(carry.grad_phi)
        if carry.pending:
            # The last step's direct terms: its e_t meets the trace G_t (see step).
            for q, c in self.direct_cuts().items():
                for a in c:
                    grad_phi[q] = grad_phi[q] + contract_batch(carry.pending[a],
                                                               carry.traces[(a, q)])
        through_phi = self.graph.phi_pullback(p_leaves, grad_phi)
        return [a + b for a, b in zip(carry.grad_direct, through_phi)]

    def as_tree(self, leaves):
        """Parameter leaves (gradients) as a pytree shaped like the model."""
        return without_fixed_start(jax.tree_util.tree_unflatten(self.graph.p_def, leaves))


def _batched(j: SJac, batch: int) -> SJac:
    return SJac(j.out_shape, j.in_shape, j.ties,
                jnp.broadcast_to(j.val, (batch,) + j.val.shape), j.val_keys, False)
