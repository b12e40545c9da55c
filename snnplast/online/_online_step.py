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
    SJac, add, compose, contract_batch, materialize, scale, state_names, step_graph,
)
from ..policies import Policy
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


class OnlineStep:
    def __init__(self, model, x_example, policy: Policy, loss):
        if not isinstance(policy, Policy):
            raise TypeError(f"method must be 'bptt' or a transport policy such as "
                            f"snnplast.Diagonal(), got {policy!r}")
        self.graph = step_graph(model, x_example)
        self.state_names = state_names(model)  # for messages: "a <- v", not "[0][2]"
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
        self.dtype = jnp.result_type(*s) if s else jnp.float32

    # ----- carry ---------------------------------------------------------------------------------
    def init(self, model, batch: int, key) -> Carry:
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
        )

    # ----- one step ------------------------------------------------------------------------------
    def _learning_signal(self, p_leaves, carry: Carry, x_t, y_t):
        """The batch's loss at this step and its reverse-mode products (this step only):
        ``d loss / d theta`` (direct) and ``d loss / d state_{t-1}``, with the step's values."""
        g = self.graph
        x_leaves = jax.tree_util.tree_leaves(x_t)

        # One forward pass of the step serves both the learning signal (reverse mode, this
        # step only) and the Jacobian blocks of the traces: its values ride along as aux.
        def batch_loss(p, s_b):
            def one(s, xx, y):
                env = g.values(p, s, xx)
                out = g.outputs(env)
                return self.loss(out, y), (out, env)

            losses, aux = jax.vmap(one)(s_b, x_leaves, y_t)
            return jnp.sum(losses), aux

        lval, vjp, (outs, env) = jax.vjp(batch_loss, p_leaves, carry.state, has_aux=True)
        d_p, d_s = vjp(jnp.ones((), lval.dtype))
        return lval, d_p, outs, d_s, env

    def step(self, p_leaves, carry: Carry, x_t, y_t, key) -> Carry:
        x_leaves = jax.tree_util.tree_leaves(x_t)
        lval, d_p, outs, d_s, env = self._learning_signal(p_leaves, carry, x_t, y_t)
        ctx = self.context.with_state(carry.policy_state)

        def per_sample(s, tr, kp, xx, ds, env):
            ls = self._fold_derived(ds, kp)
            new_s, H, F, K = self.traces.blocks(p_leaves, s, xx, env=env)
            Ht = self.traces.carried(H, kp, ctx)
            return new_s, self.traces.update(tr, Ht, F), K, ls

        new_s, new_tr, new_k, ls = jax.vmap(per_sample)(
            carry.state, carry.traces, carry.k_prev, x_leaves, d_s, env)
        grad_phi = list(carry.grad_phi)
        for (a, q), tr in carry.traces.items():
            grad_phi[q] = grad_phi[q] + contract_batch(ls[a], tr)
        t = carry.t + 1
        return Carry(
            state=list(new_s), traces=new_tr, k_prev=new_k,
            policy_state=self.policy.next_state(carry.policy_state, self.context, t, key),
            grad_phi=grad_phi,
            grad_direct=[a + b for a, b in zip(carry.grad_direct, d_p)],
            loss=carry.loss + lval,
            out_sum=jax.tree_util.tree_map(jnp.add, carry.out_sum, outs), t=t,
        )

    def record(self, p_leaves, carry: Carry, x_t, y_t, key):
        """One step of a block (:class:`BlockedStep`): everything :meth:`step` does except the
        trace update and its contraction, which the block does at once.

        **Returns:** ``(carry, (L, A, F))``: the carry with state, direct gradients, loss and
        outputs advanced (traces untouched), and the step's records, each ``[B, ...]``: the
        learning signal ``L[a]`` of the primary leaves (``d loss_t / d state_{t-1}``), the
        carried per-unit blocks ``A[(a, b)]`` (``lam * H~``, one SJac per pair) and the
        immediate influences ``F[(a, p)]`` of the traced pairs.
        """
        lval, d_p, outs, d_s, env = self._learning_signal(p_leaves, carry, x_t, y_t)
        x_leaves = jax.tree_util.tree_leaves(x_t)
        ctx = self.context.with_state(carry.policy_state)
        pairs = self.traces.structure

        def per_sample(s, kp, xx, ds, env):
            ls = self._fold_derived(ds, kp)
            new_s, H, F, K = self.traces.blocks(p_leaves, s, xx, env=env)
            A = self.per_unit(self.traces.carried(H, kp, ctx))
            L = {a: ls[a] for a in self.traces.primary}
            return new_s, K, (L, A, {k: v for k, v in F.items() if k in pairs})

        new_s, new_k, rec = jax.vmap(per_sample)(carry.state, carry.k_prev, x_leaves, d_s, env)
        t = carry.t + 1
        return carry._replace(
            state=list(new_s), k_prev=new_k,
            policy_state=self.policy.next_state(carry.policy_state, self.context, t, key),
            grad_direct=[a + b for a, b in zip(carry.grad_direct, d_p)],
            loss=carry.loss + lval,
            out_sum=jax.tree_util.tree_map(jnp.add, carry.out_sum, outs), t=t,
        ), rec

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
        _, phi_vjp = jax.vjp(self.graph.phi_of, p_leaves)
        (through_phi,) = phi_vjp(carry.grad_phi)
        return [a + b for a, b in zip(carry.grad_direct, through_phi)]

    def as_tree(self, leaves):
        return jax.tree_util.tree_unflatten(self.graph.p_def, leaves)


def _batched(j: SJac, batch: int) -> SJac:
    return SJac(j.out_shape, j.in_shape, j.ties,
                jnp.broadcast_to(j.val, (batch,) + j.val.shape), j.val_keys, False)
