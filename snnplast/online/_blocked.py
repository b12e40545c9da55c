"""Eligibility traces a block of steps at a time: the same numbers as the step recursion.

When every carried block of ``H~`` is *per unit* (elementwise: each element of a state leaf
depends only on the same element of the leaves of its shape, so ``H~`` is block-diagonal over
units with ``k x k`` blocks for ``k`` leaves), the trace over a block of ``K`` steps from ``t0``
to ``t1 = t0 + K`` is a linear recurrence with per-unit coefficients:

    G_t1 = Phi(t1, t0) G_t0 + sum_s Phi(t1, s) F_s,           Phi(t, s) = A_t ... A_{s+1}
    sum_t L_t G_{t-1} = lambda_t0 G_t0 + sum_s lambda_s F_s,  lambda_s = L_{s+1} + lambda_{s+1} A_{s+1}

(``L_t`` the learning signal of step ``t``, ``A_t`` the carried ``lam * H~_t``). ``lambda`` and
the rows ``mu_s = Phi(t1, s)`` come from one reverse scan over per-unit numbers; the ``F``
terms are contractions over (batch, time) and over time: matmuls, the shape of BPTT's weight
gradient. Per-synapse work (``G_t0`` in and ``G_t1`` out) happens once per block, and not at
all for a sequence that fits in one block. Memory: the block's per-step records
(``O(K (units + inputs))`` per sample for factored ``F``), never the sequence.

A policy's restriction of the trace (``restrict_trace``) is a mask on (state, parameter)
entries, which commutes with an elementwise ``H~``; it is applied to ``F``.

The direct term of a parameter that acts on a step's output only through new state leaves
(:meth:`OnlineStep.direct_cuts`), ``sum_s E_s F_s`` with ``E_s = d loss_s / d state_s``,
meets the same ``F_s``: the block contracts ``lambda_s + E_s`` with ``F_s`` in one product, and
the steps form no weight gradient of their own.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..engine import SJac, add, coerce, compose, contract_batch, join_structure, materialize
from ._deferred import CONTRACT_EVERY
from ._online_step import Carry, OnlineStep
from ._traces import stored_numbers

# Steps per block unless the caller says otherwise, chosen by measurement
# (benchmarks/results/block_size.md: ralif, 256 neurons, batch 32, T=400 on the shared 2-core
# machine): 8, 16, 32, 64, 128 steps took 3.2, 2.2, 1.7, 1.9, 1.3x BPTT's time with 43, 47, 51,
# 59, 81 MiB of scratch. 32 is the fastest of the sizes whose records stay small; 128 was faster
# still at 1.6x the memory (pass block=128 where memory allows).
DEFAULT_BLOCK = 32


def _elementwise(j: SJac) -> bool:
    nd = len(j.out_shape)
    return j.out_shape == j.in_shape and j.ties == frozenset((k, k) for k in range(nd))


def _describe(a: str, b: str, j: SJac) -> str:
    return f"H~ {a} <- {b} ({j.out_shape} <- {j.in_shape}, ties {sorted(j.ties)})"


def accumulation_mode(runner: OnlineStep) -> tuple[str, str]:
    """How the traces of ``runner`` (a cell under a policy) are accumulated, and why.

    **Returns:** ``("blocked", reason)`` when every carried factor of ``H~`` is per unit
    (elementwise), else ``("step", reason)`` naming the first factor that is not.
    """
    carried = runner.carried_structure()
    if not carried:
        return "blocked", "nothing of H is carried (G_t = F_t)"
    for (a, b), products in sorted(carried.items()):
        for product in products:
            for j in product:
                if not _elementwise(j):
                    names = runner.state_names
                    return "step", f"{_describe(names[a], names[b], j)} is not per unit"
    return "blocked", "every carried block of H is per unit (elementwise)"


def resolve_block(runner: OnlineStep, block: int | None, n_steps: int | None = None) -> int:
    """The number of steps per block to run ``runner`` with; ``1`` is the step recursion.

    A policy whose carried ``H~`` is not per unit always runs step by step. With
    ``block=None`` the default blocks only where some trace is stored per synapse (at least as
    many numbers as its parameter, e.g. ALIF's adaptation trace): there blocks turn per-synapse
    work at every step into matmuls. Traces that factorise (LIF's pre-synaptic trace) already
    cost little per step, and blocks would only add their records
    (benchmarks/results/online_suite_rlif.md: ~10x the scratch memory, no faster). Where blocks
    are used, a sequence of `n_steps` is one block when its records take no more memory than
    blocks of :data:`DEFAULT_BLOCK` with the traces they carry (:func:`whole_sequence_steps`):
    then no per-synapse trace exists at all.
    """
    if accumulation_mode(runner)[0] != "blocked":
        return 1
    if block is not None:
        return block
    if not _per_synapse(runner):
        return 1
    if n_steps is not None and n_steps <= whole_sequence_steps(runner):
        return n_steps
    return DEFAULT_BLOCK


# Steps whose input-only values (OnlineStep.hoist) a block evaluates at once: records of
# CONTRACT_EVERY steps, as the step recursion's chunks keep.
HOIST_EVERY = CONTRACT_EVERY

# Copies of the traces that blocks of steps hold at once (the trace in, the trace out, and the
# per-unit rows mu times the incoming trace), measured: ralif, 256 neurons, batch 64, T=100:
# blocks of 32 took 94.4 MiB of scratch, one block of 100 (no trace) 49.6 MiB, one trace copy
# being 26 MiB (README, section "Measured"; benchmarks/results/online_suite_ralif.md
# and its previous version in git).
_TRACE_COPIES = 3


def whole_sequence_steps(runner: OnlineStep) -> int:
    """The longest sequence that :func:`resolve_block` runs as one block: its per-step records
    (learning signals, carried blocks, immediate influences) take no more numbers than
    ``DEFAULT_BLOCK`` steps of records plus the traces those blocks carry.

    **Returns:** a number of steps ``>= DEFAULT_BLOCK``.
    """
    per_step = _record_numbers(runner)
    traces = _TRACE_COPIES * runner.traces.stored_size()
    return DEFAULT_BLOCK + traces // max(per_step, 1)


def _record_numbers(runner: OnlineStep) -> int:
    """Numbers per sample and step that a block records (:meth:`OnlineStep.record`)."""
    tr = runner.traces
    shapes = runner.graph.s_shapes

    def probe(p, s, xx):
        _, _, F, _ = tr.blocks(p, s, xx)
        return {k: v.val for k, v in F.items() if k in tr.structure}

    F = jax.eval_shape(probe, runner._p_example, runner._s_example, runner._x_example)
    A = runner.carried_example()
    size = lambda shape: int(np.prod(shape, dtype=np.int64))
    # L and the reverse scan's lambda: two numbers per primary state element.
    return (2 * sum(size(shapes[a]) for a in tr.primary)
            + sum(size(j.val.shape) for j in A.values())
            + sum(size(v.shape) for v in F.values()))


def _per_synapse(runner: OnlineStep) -> bool:
    traces = runner.traces
    for key, structure in traces.structure.items():
        _, p = key
        n_param = 1
        for d in runner.graph.phi_nodes[p].shape:
            n_param *= d
        stored = stored_numbers(structure, traces.shapes[key])
        if len(runner.graph.phi_nodes[p].shape) >= 2 and stored >= n_param:
            return True
    return False


def _rows_times(rows: dict, A: dict, leaves) -> dict:
    """``sum_a rows[a] @ A[a, b]`` for row vectors ``rows[a]`` (one sample)."""
    out = {}
    for (a, b), j in A.items():
        if a not in rows or b not in leaves:
            continue
        row = SJac((), j.out_shape, frozenset(), rows[a],
                   tuple((None, i) for i in range(len(j.out_shape))), False)
        term = materialize(compose(row, j))
        out[b] = term if b not in out else out[b] + term
    return out


def _mu_times(mu: dict, A: dict) -> dict:
    """``mu @ A`` for per-unit blocks ``mu[(a, c)]`` and ``A[(c, b)]`` (one sample)."""
    out = {}
    for (a, c), m in mu.items():
        for (c2, b), j in A.items():
            if c2 != c:
                continue
            term = compose(m, j)
            out[(a, b)] = term if (a, b) not in out else add(out[(a, b)], term)
    return out


def _time_sum_compose(mu: SJac, f: SJac) -> SJac:
    """``sum_s mu_s @ f_s`` for a per-unit ``mu`` and any ``f``, both with values ``[K, B, ...]``:
    one contraction over the ``K`` steps (a batched matmul), the batch kept.

    **Returns:** an SJac with values ``[B, ...]`` in the structure of ``f`` (its unit classes
    stored where ``mu`` varies along them).
    """
    classes = f.classes()
    letters = "abcdefghijklmnopqrstuvwx"
    letter = {c: letters[n] for n, c in enumerate(classes)}
    mu_classes = [f.class_of_out(o) for o, _ in mu.val_keys]
    keys = list(f.val_keys) + [c for c in mu_classes if c not in f.val_keys]
    spec_mu = "".join(letter[c] for c in mu_classes)
    spec_f = "".join(letter[c] for c in f.val_keys)
    spec_out = "".join(letter[c] for c in keys)
    val = jnp.einsum(f"yz{spec_mu},yz{spec_f}->z{spec_out}", mu.val, f.val)
    return SJac(mu.out_shape, f.in_shape, f.ties, val, tuple(keys), False)


def _flat2(a):
    return a.reshape((-1,) + a.shape[2:])


class BlockedStep:
    """Blocks of steps for a batch, for a (cell, per-unit policy, loss) bound in ``runner``.

    Shares the carry of :class:`OnlineStep`: a learner or a sequence may switch between
    blocks of any size and single steps.

    `hoist`: evaluate the input-only part of the step (:meth:`OnlineStep.hoist`)
    :data:`HOIST_EVERY` steps at a time inside the block's forward scan.
    """

    def __init__(self, runner: OnlineStep, *, hoist: bool = False):
        mode, reason = accumulation_mode(runner)
        if mode != "blocked":
            raise ValueError(f"blocked traces need a per-unit carried Jacobian: {reason}")
        self.runner = runner
        self.hoist = hoist and runner.hoist_plan() is not None
        tr = runner.traces
        self.primary = list(tr.primary)
        # Leaves whose traces a parameter's recursion runs over: one reverse scan per group.
        groups: dict = {}
        for a, p in tr.pairs:
            groups.setdefault(p, set()).add(a)
        self.groups: dict = {}
        for p, leaves in groups.items():
            self.groups.setdefault(frozenset(leaves), []).append(p)
        self.restricts = runner.restricts_trace()
        # Direct terms formed with the trace terms (one product over batch x time per pair)
        # instead of a weight-gradient product at every step.
        self.cuts = runner.direct_cuts()
        self._fix_mu_structure()

    # ----- structures fixed before the first block -----------------------------------------
    def _fix_mu_structure(self):
        """The structure of ``mu[(a, b)] = Phi(t1, s)[a, b]`` stable under ``mu @ A``."""
        A = self.runner.carried_example()
        shapes = self.runner.graph.s_shapes
        structure: dict = {}
        for leaves in self.groups:
            mu = {(a, a): _identity(shapes[a], self.runner.dtype) for a in leaves}
            for _ in range(16):
                As = {k: v for k, v in A.items() if k[0] in leaves and k[1] in leaves}
                new = jax.eval_shape(_mu_times, mu, As)
                changed = False
                merged = dict(mu)
                for key, j in new.items():
                    if key in mu:
                        ties, keys = join_structure(mu[key], j)
                    else:
                        ties, keys = j.ties, tuple(j.val_keys)
                    if key not in mu or (mu[key].ties, tuple(mu[key].val_keys)) != (ties, keys):
                        merged[key] = _abstract_zeros(shapes[key[0]], ties, keys,
                                                      self.runner.dtype)
                        changed = True
                mu = merged
                if not changed:
                    break
            else:
                raise RuntimeError("per-unit block structure did not settle in 16 iterations")
            for key, j in mu.items():
                structure[(leaves, key)] = (j.ties, tuple(j.val_keys))
        self.mu_structure = structure

    # ----- one block ------------------------------------------------------------------------
    def block(self, p_leaves, carry: Carry, inputs, targets, key, n: int, *, offset=0,
              from_zero: bool = False, trace_out: bool = True):
        """Consume ``n`` steps of ``inputs``/``targets`` (``[B, T, ...]``, step ``t`` read at
        index ``t - offset``).

        `from_zero`: the incoming traces are known to be zero (skips their terms);
        `trace_out`: compute the traces at the block's end (not needed after the last block).

        **Returns:** ``(carry, losses)`` with the batch's loss at each step ``[n]``.
        """
        from ._sequence import at_time

        runner = self.runner
        traces = carry.traces
        # The traced parameters once per block (their static part does not change in time).
        direct = (self.cuts, runner.graph.phi_of(p_leaves)) if self.cuts else None

        def fwd(state, i):
            c, start, pre = state
            t = c.t - offset
            if pre is not None:
                # A new chunk of the input-only values every `hoist_every` steps (the first
                # before the scan): its records stay [K, B, ...], not the block's [n, B, ...].
                start, pre = jax.lax.cond((i % hoist_every == 0) & (i > 0),
                                          lambda: hoisted(t), lambda: (start, pre))
            x_t, y_t = (jax.tree_util.tree_map(lambda a: at_time(a, t), z)
                        for z in (inputs, targets))
            pre_t = None if pre is None else [
                jax.lax.dynamic_index_in_dim(v, t - start, 0, keepdims=False) for v in pre]
            new, rec = runner.record(p_leaves, c, x_t, y_t, jax.random.fold_in(key, c.t),
                                     direct, pre_t)
            return (new, start, pre), (new.loss - c.loss, rec)

        n_in = jax.tree_util.tree_leaves(inputs)[0].shape[1]
        hoist_every = min(HOIST_EVERY, n, n_in)

        def hoisted(t):
            """The input-only values of steps ``start .. start + hoist_every`` (``[K, B, ...]``),
            ``start`` moved back where the inputs end sooner."""
            start = jnp.clip(t, 0, n_in - hoist_every)
            x = jax.tree_util.tree_map(
                lambda a: jax.lax.dynamic_slice_in_dim(a, start, hoist_every, axis=1), inputs)
            return start, runner.hoist(p_leaves, x)

        start, pre = hoisted(carry.t - offset) if self.hoist else (jnp.zeros((), jnp.int32), None)
        head = carry._replace(traces={}, pending={})
        (head, _, _), (losses, (L, A, F, E)) = jax.lax.scan(fwd, (head, start, pre),
                                                            jnp.arange(n))
        if self.restricts:
            F = {k: jax.vmap(jax.vmap(lambda f, k=k: runner.policy.restrict_trace(
                f, k[0], k[1], runner.context)))(f) for k, f in F.items()}
        shapes = runner.graph.s_shapes
        grad_phi = list(head.grad_phi)
        new_traces = dict(traces)
        for leaves, ps in self.groups.items():
            As = {k: v for k, v in A.items() if k[0] in leaves and k[1] in leaves}
            batch = jax.tree_util.tree_leaves(L)[0].shape[1]
            lam0 = {a: jnp.zeros((batch,) + shapes[a], L[a].dtype) for a in leaves}
            mu0 = {}
            if trace_out:
                mu0 = {(a, a): self._coerce_mu(leaves, (a, a), _identity(shapes[a], runner.dtype),
                                               batch) for a in leaves}
                mu0 = self._fill_mu(leaves, mu0, batch)

            def rev(c, rec, leaves=leaves, batch=batch):
                lam_next, mu, acc = c
                L_i, A_i, i = rec
                # lambda_{t0+i} = L[i] + lambda_{t0+i+1} A[i];  mu_{t0+i} = mu_{t0+i+1} A[i]
                lam = jax.vmap(lambda r, ai: _rows_times(r, ai, leaves))(lam_next, A_i)
                lam = {b: L_i[b] + lam.get(b, 0.0) for b in leaves}
                new_mu = {}
                if mu:
                    new_mu = {k: self._coerce_mu(leaves, k, v, None)
                              for k, v in jax.vmap(_mu_times)(mu, A_i).items()}
                    new_mu = self._fill_mu(leaves, new_mu, batch)
                # The signal with the direct term, lambda + E, is written over E's record in
                # place (a carried buffer): no second [K, B, ...] array.
                acc = {a: jax.lax.dynamic_update_index_in_dim(
                    e, lam_next[a] + jax.lax.dynamic_index_in_dim(e, i, keepdims=False), i, 0)
                    for a, e in acc.items()}
                return (lam, new_mu, acc), (lam_next, mu)

            E_group = {a: E[a] for a in leaves
                       if any(a in self.cuts.get(p, ()) for p in ps)}
            (lam_t0, mu_t0, lam_e), (lam_after, mu_s) = jax.lax.scan(
                rev, (lam0, mu0, E_group), ({a: L[a] for a in leaves}, As, jnp.arange(n)),
                reverse=True)
            # lam_after[i] = lambda_{t0+i+1}, the signal that meets F[i]; mu_s[i] = Phi(t1, t0+i+1).
            for p in ps:
                g = grad_phi[p]
                for a in leaves:
                    if (a, p) in runner.traces.structure and not from_zero:
                        g = g + contract_batch(lam_t0[a], traces[(a, p)])
                # F[i] meets lambda_{t0+i+1} (the trace term) and, for the leaves that cut
                # p's path to the output, E[i] (the direct term): one product for both.
                for a in leaves:
                    if (a, p) not in runner.traces.structure or (a, p) not in F:
                        continue
                    signal = lam_e[a] if a in self.cuts.get(p, ()) else lam_after[a]
                    f = F[(a, p)]
                    flat = SJac(f.out_shape, f.in_shape, f.ties, _flat2(f.val), f.val_keys)
                    g = g + contract_batch(_flat2(signal), flat)
                grad_phi[p] = g
                if not trace_out:
                    continue
                for a in leaves:
                    if (a, p) not in runner.traces.structure:
                        continue
                    total = None
                    for b in leaves:
                        if (a, b) not in mu_s:
                            continue
                        terms = []
                        if (b, p) in F:
                            terms.append(_time_sum_compose(mu_s[(a, b)], F[(b, p)]))
                        if not from_zero and (b, p) in traces:
                            terms.append(jax.vmap(compose)(mu_t0[(a, b)], traces[(b, p)]))
                        for t in terms:
                            total = t if total is None else _badd(total, t)
                    structure = runner.traces.structure[(a, p)]
                    if total is None:
                        new_traces[(a, p)] = jax.tree_util.tree_map(jnp.zeros_like,
                                                                    traces[(a, p)])
                    else:
                        new_traces[(a, p)] = jax.vmap(
                            lambda j, st=structure: coerce(j, *st))(total)
        # A step before the block left its direct terms pending on the incoming trace.
        if not from_zero:
            for q, leaves in runner.direct_cuts().items():
                for a in leaves:
                    grad_phi[q] = grad_phi[q] + contract_batch(carry.pending[a],
                                                               traces[(a, q)])
        return head._replace(traces=new_traces if trace_out else traces, grad_phi=grad_phi,
                             pending={a: jnp.zeros_like(v) for a, v in carry.pending.items()}
                             ), losses

    # ----- helpers on mu ---------------------------------------------------------------------
    def _coerce_mu(self, leaves, key, j: SJac, batch):
        ties, keys = self.mu_structure[(leaves, key)]
        if batch is None:
            return jax.vmap(lambda x: coerce(x, ties, keys))(j)
        j = coerce(j, ties, keys)
        return SJac(j.out_shape, j.in_shape, j.ties,
                    jnp.broadcast_to(j.val, (batch,) + j.val.shape), j.val_keys, False)

    def _fill_mu(self, leaves, mu, batch):
        """Zeros for the blocks of ``mu`` that this step's product left out."""
        out = dict(mu)
        shapes = self.runner.graph.s_shapes
        for (lv, key), (ties, keys) in self.mu_structure.items():
            if lv != leaves or key in out:
                continue
            j = _abstract_zeros(shapes[key[0]], ties, keys, self.runner.dtype)
            out[key] = SJac(j.out_shape, j.in_shape, ties,
                            jnp.zeros((batch,) + tuple(j.val.shape), self.runner.dtype), keys,
                            False)
        return out


def _badd(a: SJac, b: SJac) -> SJac:
    return jax.vmap(add)(a, b)


def _identity(shape, dtype) -> SJac:
    ties = frozenset((k, k) for k in range(len(shape)))
    return SJac(tuple(shape), tuple(shape), ties, jnp.ones((), dtype), (), True)


def _abstract_zeros(shape, ties, keys, dtype):
    j = SJac(tuple(shape), tuple(shape), ties, None, keys, False)
    return SJac(tuple(shape), tuple(shape), ties,
                jax.ShapeDtypeStruct(tuple(j.key_size(k) for k in keys), dtype), keys, False)
