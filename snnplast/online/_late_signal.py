"""The learning signal of a chunk of steps taken at once, from the steps' residuals.

Step ``t``'s learning signal ``d loss_t / d state_{t-1}`` is a reverse-mode product through the
step (for a recurrent layer, ``e_t W_rec``: a ``[B, units] @ [units, units]`` matmul). Where
every traced pair's contraction is deferred to the end of a chunk of steps
(:func:`snnplast.online.deferred_pairs`), the signal is only read there, so it need not be formed
at its step: the step keeps the residuals of its reverse-mode function (the values the product
needs that depend on the step's state and input; the parameters are the same at every step and
are not kept), and the chunk's end applies the function to all ``K`` steps at once, vmapped:
one ``[K B, units] @ [units, units]`` product instead of ``K`` small ones. The same numbers as
the step recursion (the same products, in a different order of evaluation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..engine._jaxcompat import Literal, jaxpr_as_fun
from ._online_step import Carry, OnlineStep


def _abstract(tree):
    return jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), tree)


def _signature(tree) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((jnp.shape(a), jnp.result_type(a)) for a in leaves)


def step_dependent(jaxpr, n_invariant: int, outvars) -> list[bool]:
    """For each of `outvars` (outputs of `jaxpr`), whether it depends on the inputs after the
    first `n_invariant` (``False``: on those first inputs and constants only): an equation's
    outputs depend on them when any of its inputs does."""
    marked = set(jaxpr.invars[n_invariant:])
    for eqn in jaxpr.eqns:
        if any(not isinstance(v, Literal) and v in marked for v in eqn.invars):
            marked.update(eqn.outvars)
    return [not isinstance(v, Literal) and v in marked for v in outvars]


class LateSignal:
    """The step recursion of ``runner`` with every traced pair's contraction deferred to the end
    of a chunk and the learning signal formed there (:meth:`step` records, :meth:`finish`
    contracts)."""

    def __init__(self, runner: OnlineStep):
        self.runner = runner
        cuts = runner.direct_cuts()
        self.cut_sets = sorted(set(cuts.values()))
        self._jaxprs: dict = {}

    @staticmethod
    def possible(runner: OnlineStep) -> bool:
        """Whether every traced parameter's direct term is cut (:meth:`OnlineStep.direct_cuts`):
        then the steps form no weight gradient of their own, and a chunk's signals are state
        shaped (a direct weight gradient of ``K`` steps at once would be ``K`` weight copies)."""
        return len(runner.direct_cuts()) == len(runner.graph.phi_nodes)

    @staticmethod
    def applies(runner: OnlineStep, defer) -> bool:
        """Whether the step recursion may form its signals late: :meth:`possible`, and every
        traced pair's contraction is deferred (then no step reads its signal)."""
        return (LateSignal.possible(runner) and bool(defer)
                and set(runner.traces.structure) <= set(defer))

    def _direct(self, phi):
        cuts = self.runner.direct_cuts()
        return (cuts, phi) if cuts else None

    def _traced(self, invariant, per_step):
        """The step's forward with the signal's reverse-mode function
        (:meth:`OnlineStep.signal_vjp`) as one closed jaxpr of ``(invariant, per_step)``, its
        output tree and which of the function's leaves depend on `per_step`.

        One jaxpr serves the step and the chunk's end: the order of a reverse-mode function's
        residuals depends on how its inputs were traced, so leaves taken from two separate
        traces need not line up.
        """
        key = (_signature(invariant), _signature(per_step))
        if key not in self._jaxprs:
            def fn(inv, st):
                (p_leaves, phi), (state, x_t, y_t, pre) = inv, st
                return self.runner.signal_vjp(p_leaves, state, x_t, y_t, self._direct(phi), pre)

            closed, shapes = jax.make_jaxpr(fn, return_shape=True)(_abstract(invariant),
                                                                  _abstract(per_step))
            n_vjp = len(jax.tree_util.tree_leaves(shapes[3]))
            n_inv = len(jax.tree_util.tree_leaves(invariant))
            mask = step_dependent(closed.jaxpr, n_inv, closed.jaxpr.outvars[-n_vjp:])
            self._jaxprs[key] = (closed, jax.tree_util.tree_structure(shapes), mask)
        return self._jaxprs[key]

    def _run(self, p_leaves, phi, state, x_t, y_t, pre):
        """``((loss, outputs, env, vjp), mask)``: :meth:`_traced`'s jaxpr evaluated."""
        invariant, per_step = (p_leaves, phi), (state, x_t, y_t, pre)
        closed, tree, mask = self._traced(invariant, per_step)
        flat = jaxpr_as_fun(closed)(*jax.tree_util.tree_leaves((invariant, per_step)))
        return jax.tree_util.tree_unflatten(tree, flat), mask

    def forward(self, p_leaves, phi, state, x_t, y_t, pre=None):
        """The batch's step forward, its learning signal not formed.

        **Returns:** ``(loss, outputs, env, residuals)``: the residuals of the signal's
        reverse-mode function that depend on the step's state and input (for :meth:`signals`).
        """
        (lval, outs, env, vjp), mask = self._run(p_leaves, phi, state, x_t, y_t, pre)
        leaves = jax.tree_util.tree_leaves(vjp)
        return lval, outs, env, [leaf for leaf, m in zip(leaves, mask, strict=True) if m]

    def signals(self, p_leaves, phi, residuals, example):
        """The learning signals of ``K`` steps at once from their :meth:`forward` residuals
        (stacked, ``[K, ...]``): one vmapped reverse-mode product.

        `example`: ``(state, x_t, y_t, pre_t)`` of any of the steps, for the invariant
        residuals (the parameters' values; the example's own values are not used).

        **Returns:** ``(d_s, e)`` as :meth:`OnlineStep.apply_signal`, each ``[K, B, ...]``
        (no direct weight gradient: every traced parameter is cut, :meth:`possible`).
        """
        r = self.runner
        (lval, _, _, vjp), mask = self._run(p_leaves, phi, *example)
        leaves, treedef = jax.tree_util.tree_flatten(vjp)

        def apply(step_leaves):
            it = iter(step_leaves)
            full = [next(it) if m else leaf for leaf, m in zip(leaves, mask, strict=True)]
            return r.apply_signal(jax.tree_util.tree_unflatten(treedef, full), lval)

        d_p, d_s, e = jax.vmap(apply)(residuals)
        if d_p is not None:
            raise RuntimeError("snnplast: late learning signals need every traced parameter's "
                               "direct term cut (LateSignal.possible)")
        return d_s, e

    def block_signals(self, p_leaves, phi, pending, example):
        """The records ``(L, E)`` of ``K`` steps of :meth:`OnlineStep.record` run with
        ``late=self``, from its ``L = (residuals, k_prev)`` (stacked, ``[K, ...]``).

        **Returns:** ``(L, E)``: the signals of the primary leaves and ``d loss_t / d state_t``
        of the cut leaves.
        """
        r = self.runner
        residuals, k_prev = pending
        d_s, e = self.signals(p_leaves, phi, residuals, example)

        def primary(ds, kp):
            ls = r._fold_derived(ds, kp)
            return {a: ls[a] for a in r.traces.primary}

        return jax.vmap(jax.vmap(primary))(d_s, k_prev), e

    def step(self, p_leaves, carry: Carry, x_t, y_t, key, phi, pre=None):
        """One step: state, traces, loss and outputs advanced; the learning signal left to
        :meth:`finish`.

        **Returns:** ``(carry, record)`` with ``record = (residuals, k_prev, carried, traces)``:
        the step's residuals that depend on its state and input, the same-step Jacobians and
        the carried blocks the signal is formed with, and the traces ``G_{t-1}`` it meets.
        """
        r = self.runner
        lval, outs, env, residuals = self.forward(p_leaves, phi, carry.state, x_t, y_t, pre)
        x_leaves = jax.tree_util.tree_leaves(x_t)
        ctx = r.context.with_state(carry.policy_state)
        keep_carried = bool(self.cut_sets) and r.policy.lam != 0.0

        def per_sample(s, tr, kp, xx, env):
            new_s, H, F, K = r.traces.blocks(p_leaves, s, xx, env=env)
            Ht = r.traces.carried(H, kp, ctx)
            return new_s, r.traces.update(tr, Ht, F), K, (Ht if keep_carried else {})

        new_s, new_tr, new_k, carried = jax.vmap(per_sample)(
            carry.state, carry.traces, carry.k_prev, x_leaves, env)
        t = carry.t + 1
        new = carry._replace(
            state=list(new_s), traces=new_tr, k_prev=new_k,
            policy_state=r.policy.next_state(carry.policy_state, r.context, t, key),
            loss=carry.loss + lval,
            out_sum=jax.tree_util.tree_map(jnp.add, carry.out_sum, outs), t=t)
        return new, (residuals, carry.k_prev, carried, carry.traces)

    def finish(self, p_leaves, carry: Carry, records, pending, example, phi) -> Carry:
        """The chunk's learning signals from its records (``[K, ...]``), contracted with its
        traces, and the last step's ``e`` left pending.

        `pending`: ``carry.pending`` at the chunk's start (``e`` of the step before it);
        `example`: ``(x_t, y_t, pre_t)`` of any step of the chunk (for the shapes of the
        reverse-mode function; its values are not used).
        """
        from ._deferred import contract_terms

        r = self.runner
        residuals, k_prev, carried, traces = records
        d_s, e = self.signals(p_leaves, phi, residuals, (carry.state,) + tuple(example))

        def per_sample(ds, kp, e_s, Ht):
            ls = r._fold_derived(ds, kp)
            rows = {c: r._rows_through({a: e_s[a] for a in c}, Ht) for c in self.cut_sets}
            return ls, rows

        ls, rows = jax.vmap(jax.vmap(per_sample))(d_s, k_prev, e, carried)
        # e of the step before each step: the chunk's start's, then the chunk's own.
        before = {a: jnp.concatenate([pending[a][None], e[a][:-1]]) for a in carry.pending}
        signals = r.signals(ls, before, rows)
        kinds = r.signal_kinds()
        order = sorted({kinds[k] for k in traces})
        grad_phi = contract_terms(r, carry.grad_phi, ([signals[k] for k in order], traces))
        return carry._replace(grad_phi=grad_phi, pending={a: e[a][-1] for a in carry.pending})
