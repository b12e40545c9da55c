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

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..engine import SJac, add, coerce, compose, contract_batch, join_structure, materialize
from ._deferred import CONTRACT_EVERY
from ._late_signal import LateSignal
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
    blocks of :data:`DEFAULT_BLOCK` with the trace they carry and one trace more
    (:func:`whole_sequence_steps`): then no per-synapse trace exists at all, which is faster.
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

# Samples whose per-synapse traces a block's end updates at once, in place
# (BlockedStep._carried). Measured (ralif, 256 neurons, batch 64, blocks of 32): the scratch at
# T=1600 is 44.4 MiB one sample at a time, 87.8 MiB (T=400) for the whole batch at once, one
# trace copy being 24.75 MiB; see README, section "Measured", for the times.
UPDATE_SAMPLES = 1

# Steps whose records a whole-sequence block recomputes at once from the states it kept
# (BlockedStep._recomputed); 0 or None: every step's records are kept. Measured on the default
# network (ralif, 256 neurons, batch 32, T=100; paired, 15 rounds): records kept 24.4 MiB of
# scratch at 0.84x BPTT's time; recomputed every 5 / 10 / 16 steps 5.0 / 4.6 / 6.4 MiB at
# 1.23 / 1.00 / 1.03x (BPTT 12.5 MiB).
RECOMPUTE_EVERY: int | None = 10

# Whether a chunk of steps (a block, or a chunk of deferred contractions in the step
# recursion) forms its steps' learning signals after its forward steps, all at once
# (LateSignal), instead of at each step. Off: measured on a quiet machine
# (benchmarks/results/online_suite_late_signal.md, batch 64, 256 neurons), late signals gave
# about the same wall time (rlif T=1600: 0.62 against 0.63x BPTT; ralif T=1600: 1.98 against
# 1.91x) for more CPU time (0.69 against 0.56x; 1.93 against 1.76x) and more scratch memory
# (16.1 against 8.7 MiB; 47.7 against 44.4 MiB).
LATE_SIGNAL = False

# Trace copies whose memory a sequence may take as one block (records of every step, no trace
# at all) before it runs in blocks: the one copy that blocks hold (updated in place) and one
# more, bought for time. Measured (ralif, 256 neurons, batch 64, T=100): one block 48.9 MiB in
# 110 ms, blocks of 32 44.2 MiB in 258 ms (paired); one trace copy 24.75 MiB.
_TRACE_COPIES = 2


def whole_sequence_steps(runner: OnlineStep) -> int:
    """The longest sequence that :func:`resolve_block` runs as one block: its per-step records
    (learning signals, carried blocks, immediate influences) take no more numbers than
    ``DEFAULT_BLOCK`` steps of records plus two copies of the traces: the one those blocks
    carry and one more, the memory a short sequence may spend not to form traces at all.

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
    :data:`HOIST_EVERY` steps at a time inside the block's forward scan. `samples`: how many
    samples' traces a block's end updates at once, in place (default: :data:`UPDATE_SAMPLES`
    where some trace is stored per synapse, else the whole batch in one batched update).
    `recompute`: steps whose records a whole-sequence block (from zero traces, none wanted at
    its end) recomputes at once from the states it kept, in its reverse pass (default
    :data:`RECOMPUTE_EVERY`; ``0``: keep every step's records; never with `hoist`).
    """

    def __init__(self, runner: OnlineStep, *, hoist: bool = False,
                 samples: int | None = None, recompute: int | None = None,
                 late: bool | None = None):
        mode, reason = accumulation_mode(runner)
        if mode != "blocked":
            raise ValueError(f"blocked traces need a per-unit carried Jacobian: {reason}")
        self.runner = runner
        if samples is None:
            # Traces that factorise are small: a loop over samples would only add steps.
            samples = UPDATE_SAMPLES if _per_synapse(runner) else None
        elif isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be a positive integer (samples whose traces a "
                             f"block's end updates at once), got {samples!r}")
        self.samples = samples
        recompute = RECOMPUTE_EVERY if recompute is None else recompute
        if recompute is not None and (isinstance(recompute, bool)
                                      or not isinstance(recompute, int) or recompute < 0):
            raise ValueError(f"recompute must be a number of steps (whose records a "
                             f"whole-sequence block recomputes at once; 0: keep every "
                             f"step's) or None (the default), got {recompute!r}")
        self.recompute = recompute
        self.hoist = hoist and runner.hoist_plan() is not None
        # The learning signals of the block's steps in one product after its forward scan
        # (snnplast/online/_late_signal.py); not with hoisted values, whose records it would
        # need too.
        late = LATE_SIGNAL if late is None else late
        self.late = (LateSignal(runner) if late and not self.hoist and LateSignal.possible(runner)
                     else None)
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

        if (from_zero and not trace_out and self.recompute and n > self.recompute
                and not self.hoist):
            return self._recomputed(p_leaves, carry, inputs, targets, key, n, offset)
        runner = self.runner
        traces = carry.traces
        # The traced parameters once per block (their static part does not change in time).
        direct = (self.cuts, runner.graph.phi_of(p_leaves)) if self.cuts else None
        late = self.late

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
                                     direct, pre_t, late)
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
        if late is not None:
            L, E = self._late_records(p_leaves, L, direct, carry, inputs, targets, offset)
        if self.restricts:
            F = {k: jax.vmap(jax.vmap(lambda f, k=k: runner.policy.restrict_trace(
                f, k[0], k[1], runner.context)))(f) for k, f in F.items()}
        shapes = runner.graph.s_shapes
        grad_phi = list(head.grad_phi)
        # What meets the incoming traces, per parameter: the signals that contract with them
        # (rows), the rows mu that carry them to the block's end and the F terms they join.
        rows: dict = {}
        mu_in: dict = {}
        mu_F: dict = {}
        leaves_of: dict = {}
        batch = jax.tree_util.tree_leaves(L)[0].shape[1]
        for leaves, ps in self.groups.items():
            lam0 = {a: jnp.zeros((batch,) + shapes[a], L[a].dtype) for a in leaves}
            mu0 = {}
            if trace_out:
                mu0 = {(a, a): self._coerce_mu(leaves, (a, a), _identity(shapes[a], runner.dtype),
                                               batch) for a in leaves}
                mu0 = self._fill_mu(leaves, mu0, batch)

            lam_t0, mu_t0, lam_e, lam_after, mu_s = self._reverse(leaves, ps, L, A, E, F, lam0,
                                                                  mu0, n)
            grad_phi = self._contract_f(leaves, ps, F, lam_e, lam_after, grad_phi)
            for p in ps:
                leaves_of[p] = leaves
                if not from_zero:
                    for a in leaves:
                        if (a, p) in runner.traces.structure:
                            rows[(a, p)] = lam_t0[a]
                if trace_out:
                    mu_in[p], mu_F[p] = mu_t0, mu_s
        # A step before the block left its direct terms pending on the incoming trace.
        if not from_zero:
            for q, leaves in runner.direct_cuts().items():
                for a in leaves:
                    pend = carry.pending[a]
                    rows[(a, q)] = pend if (a, q) not in rows else rows[(a, q)] + pend
        parts = _CarriedParts(leaves_of, rows, mu_in, mu_F, F, from_zero, trace_out)
        new_traces, grad_phi = self._carried(traces, parts, grad_phi)
        return head._replace(traces=new_traces if trace_out else traces, grad_phi=grad_phi,
                             pending={a: jnp.zeros_like(v) for a, v in carry.pending.items()}
                             ), losses

    def _reverse(self, leaves, ps, L, A, E, F, lam0, mu0, n):
        """The reverse scan of the leaves ``leaves`` (the parameters ``ps``) over ``n`` steps of
        records ``[n, B, ...]``, from ``lambda = lam0`` and ``mu = mu0`` at the end.

        **Returns:** ``(lam_t0, mu_t0, lam_e, lam_after, mu_s)``: lambda and mu at the start,
        ``lambda + E`` written over E's records of the cut leaves, and the records
        ``lam_after[i] = lambda_{t0+i+1}`` and ``mu_s[i] = Phi(t1, t0+i+1)`` that meet some F.
        """
        As = {k: v for k, v in A.items() if k[0] in leaves and k[1] in leaves}
        batch = jax.tree_util.tree_leaves(L)[0].shape[1]
        # lambda meets F[(a, p)] unless a cuts p's path (there lambda + E does); mu_s[(a, b)]
        # meets F[(b, p)].
        lam_out = {a for a in leaves for p in ps
                   if (a, p) in F and a not in self.cuts.get(p, ())}
        mu_out = {(a, b) for a, b in mu0 if any((b, p) in F for p in ps)}

        def rev(c, rec):
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
            # Only what meets some F leaves the scan: its outputs are [K, B, ...] records.
            return (lam, new_mu, acc), ({a: lam_next[a] for a in lam_out},
                                        {k: mu[k] for k in mu_out if k in mu})

        E_group = {a: E[a] for a in leaves if any(a in self.cuts.get(p, ()) for p in ps)}
        (lam_t0, mu_t0, lam_e), (lam_after, mu_s) = jax.lax.scan(
            rev, (lam0, mu0, E_group), ({a: L[a] for a in leaves}, As, jnp.arange(n)),
            reverse=True)
        return lam_t0, mu_t0, lam_e, lam_after, mu_s

    def _contract_f(self, leaves, ps, F, lam_e, lam_after, grad_phi: list) -> list:
        """``grad_phi`` plus each ``F[i]`` met by ``lambda_{t0+i+1}`` (the trace term) and, for
        the leaves that cut p's path to the output, ``E[i]`` (the direct term): one product
        over (steps, batch) for both."""
        grad_phi = list(grad_phi)
        structure = self.runner.traces.structure
        for p in ps:
            g = grad_phi[p]
            for a in leaves:
                if (a, p) not in structure or (a, p) not in F:
                    continue
                signal = lam_e[a] if a in self.cuts.get(p, ()) else lam_after[a]
                f = F[(a, p)]
                flat = SJac(f.out_shape, f.in_shape, f.ties, _flat2(f.val), f.val_keys)
                g = g + contract_batch(_flat2(signal), flat)
            grad_phi[p] = g
        return grad_phi


    # ----- a whole sequence, its records recomputed a chunk at a time -------------------------
    def _recomputed(self, p_leaves, carry: Carry, inputs, targets, key, n: int, offset):
        """:meth:`block` for a whole sequence (from zero traces, none wanted at the end) whose
        records are not kept: a forward pass keeps the carry every :attr:`recompute` steps
        (state, same-step Jacobians, policy state, time), and the reverse pass recomputes one
        chunk's records from its checkpoint, runs the chunk's reverse scan (lambda carried from
        the chunk after it) and contracts its F. Memory: the checkpoints and one chunk's
        records instead of every step's; time: one more forward pass of the steps.
        """
        from ._sequence import at_time

        runner = self.runner
        direct = (self.cuts, runner.graph.phi_of(p_leaves)) if self.cuts else None
        size = self.recompute
        full, first = divmod(n, size)
        start = carry._replace(traces={}, pending={})

        def step(c):
            t = c.t - offset
            x_t, y_t = (jax.tree_util.tree_map(lambda a: at_time(a, t), z)
                        for z in (inputs, targets))
            return runner.record(p_leaves, c, x_t, y_t, jax.random.fold_in(key, c.t), direct,
                                 late=self.late)

        def plain(c, _):
            new, _ = step(c)  # the records are not outputs: XLA drops what only they need
            return new, new.loss - c.loss

        def keep(c):
            return c.state, c.k_prev, c.policy_state, c.t

        def chunk_forward(c, _):
            kept = keep(c)
            c, losses = jax.lax.scan(plain, c, None, length=size)
            return c, (kept, losses)

        kept_first = keep(start)
        c, losses_first = jax.lax.scan(plain, start, None, length=first)
        c, (kept, losses) = jax.lax.scan(chunk_forward, c, None, length=full)
        losses = jnp.concatenate([losses_first, losses.reshape(-1)])

        shapes = runner.graph.s_shapes
        batch = jax.tree_util.tree_leaves(c.state)[0].shape[0]

        def chunk_reverse(state, kept, length):
            lam, grad_phi = state
            state0, k_prev, policy_state, t = kept
            c0 = start._replace(state=state0, k_prev=k_prev, policy_state=policy_state, t=t)
            _, (L, A, F, E) = jax.lax.scan(lambda c, _: step(c), c0, None, length=length)
            if self.late is not None:
                L, E = self._late_records(p_leaves, L, direct, c0, inputs, targets, offset)
            if self.restricts:
                F = {k: jax.vmap(jax.vmap(lambda f, k=k: runner.policy.restrict_trace(
                    f, k[0], k[1], runner.context)))(f) for k, f in F.items()}
            new_lam = {}
            for leaves, ps in self.groups.items():
                lam_t0, _, lam_e, lam_after, _ = self._reverse(leaves, ps, L, A, E, F,
                                                               lam[leaves], {}, length)
                grad_phi = self._contract_f(leaves, ps, F, lam_e, lam_after, grad_phi)
                new_lam[leaves] = lam_t0
            return new_lam, grad_phi

        lam = {leaves: {a: jnp.zeros((batch,) + shapes[a], runner.dtype) for a in leaves}
               for leaves in self.groups}
        state = (lam, list(c.grad_phi))
        if full:
            state, _ = jax.lax.scan(lambda s, k: (chunk_reverse(s, k, size), None), state, kept,
                                    reverse=True)
        if first:
            state = chunk_reverse(state, kept_first, first)
        return c._replace(grad_phi=state[1],
                          pending={a: jnp.zeros_like(v) for a, v in carry.pending.items()}
                          ), losses

    def _late_records(self, p_leaves, pending, direct, start: Carry, inputs, targets, offset):
        """The records ``(L, E)`` of steps recorded with :attr:`late`, from their ``pending``
        residuals (:meth:`LateSignal.block_signals`; every traced parameter is cut, so the
        steps have no direct gradient). `start`: the carry at the steps' start (for the
        shapes only)."""
        from ._sequence import at_time

        t = start.t - offset
        x_t, y_t = (jax.tree_util.tree_map(lambda a: at_time(a, t), z) for z in (inputs, targets))
        phi = None if direct is None else direct[1]
        return self.late.block_signals(p_leaves, phi, pending, (start.state, x_t, y_t, None))


    # ----- the incoming traces: read once, updated in place -----------------------------------
    def _carried(self, traces: dict, parts: _CarriedParts, grad_phi: list):
        """The terms of the block that meet the per-synapse traces: ``rows G_t0`` into the
        gradient and ``G_t1 = mu_t0 G_t0 + sum_s mu_s F_s`` written over ``G_t0``, a few
        samples at a time (:func:`samples_per_update`) in a loop that carries the traces, so
        the traces exist once, not as the incoming, composed, summed and coerced copies that
        one batched update holds at once.

        **Returns:** ``(traces, grad_phi)`` after the block.
        """
        if not parts.rows and not parts.mu_F:
            return traces, grad_phi  # the block starts from zero and carries nothing on
        batch = jax.tree_util.tree_leaves(traces)[0].shape[0]
        size = samples_per_update(self.samples, batch)
        if size == batch:
            grads, new = self._carried_chunk(traces, parts)
            return {**traces, **new}, _added(grad_phi, grads)

        def take(tree, start, axis):
            return jax.tree_util.tree_map(
                lambda v: jax.lax.dynamic_slice_in_dim(v, start, size, axis), tree)

        last = batch - size

        def body(i, state):
            bufs, acc, old = state
            start = i * size
            # The per-step records are [K, B, ...]: their batch axis is the second.
            chunk = parts._replace(rows=take(parts.rows, start, 0), mu_in=take(parts.mu_in, start, 0),
                                   mu_F=take(parts.mu_F, start, 1), F=take(parts.F, start, 1))
            grads, new = self._carried_chunk(old, chunk)
            bufs = {k: (v if k not in new else _write(v, new[k], start)) for k, v in bufs.items()}
            # The next samples' traces are read here, after this write: the buffer's only
            # readers then come after its writers, and XLA updates it in place (a read of
            # the slice inside the gradient's fusion, beside the write, made it copy the
            # whole buffer at every iteration).
            old = take(bufs, jnp.minimum(start + size, last), 0)
            return bufs, _added(acc, grads), old

        bufs, grad_phi, _ = jax.lax.fori_loop(0, batch // size, body,
                                              (traces, grad_phi, take(traces, 0, 0)))
        return bufs, grad_phi

    def _carried_chunk(self, old: dict, parts: _CarriedParts):
        """:meth:`_carried` for the samples of ``old`` (each array's first axis, or the second
        of the per-step records): the gradient terms ``{p: rows G_t0}`` and the new traces."""
        structure = self.runner.traces.structure
        grads: dict = {}
        for (a, p), row in parts.rows.items():
            term = contract_batch(row, old[(a, p)])
            grads[p] = term if p not in grads else grads[p] + term
        new: dict = {}
        for p, mu_s in parts.mu_F.items():
            leaves = parts.leaves_of[p]
            for a in leaves:
                if (a, p) not in structure:
                    continue
                total = None
                for b in leaves:
                    terms = []
                    if (a, b) in mu_s and (b, p) in parts.F:
                        terms.append(_time_sum_compose(mu_s[(a, b)], parts.F[(b, p)]))
                    if not parts.from_zero and (a, b) in parts.mu_in[p] and (b, p) in old:
                        terms.append(jax.vmap(compose)(parts.mu_in[p][(a, b)], old[(b, p)]))
                    for t in terms:
                        total = t if total is None else _badd(total, t)
                if total is None:
                    new[(a, p)] = jax.tree_util.tree_map(jnp.zeros_like, old[(a, p)])
                else:
                    new[(a, p)] = jax.vmap(lambda j, st=structure[(a, p)]: coerce(j, *st))(total)
        return grads, new

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


class _CarriedParts(NamedTuple):
    """What a block's end needs besides the incoming traces (:meth:`BlockedStep._carried`)."""

    leaves_of: dict  # p -> the leaves its traces recur over
    rows: dict  # (a, p) -> [B, *shape_a], the signals that meet the incoming trace G[(a, p)]
    mu_in: dict  # p -> {(a, b): mu_t0}, values [B, ...]
    mu_F: dict  # p -> {(a, b): mu_s}, values [K, B, ...]
    F: dict  # (a, p) -> F_s, values [K, B, ...]
    from_zero: bool
    trace_out: bool


def samples_per_update(samples: int | None, batch: int) -> int:
    """Samples of a batch of ``batch`` whose traces a block's end updates at once: the largest
    divisor of ``batch`` not above ``samples`` (``None``: the whole batch)."""
    if samples is None or samples >= batch:
        return batch
    return max(d for d in range(1, samples + 1) if batch % d == 0)


def _added(grads: list, terms: dict) -> list:
    return [g + terms[p] if p in terms else g for p, g in enumerate(grads)]


def _write(buf: SJac, new: SJac, start) -> SJac:
    """``new``'s values written into ``buf``'s from sample ``start`` on (in place in a loop)."""
    val = jax.lax.dynamic_update_slice_in_dim(buf.val, new.val.astype(buf.val.dtype), start, 0)
    return SJac(buf.out_shape, buf.in_shape, buf.ties, val, buf.val_keys, False)


def _badd(a: SJac, b: SJac) -> SJac:
    return jax.vmap(add)(a, b)


def _identity(shape, dtype) -> SJac:
    ties = frozenset((k, k) for k in range(len(shape)))
    return SJac(tuple(shape), tuple(shape), ties, jnp.ones((), dtype), (), True)


def _abstract_zeros(shape, ties, keys, dtype):
    j = SJac(tuple(shape), tuple(shape), ties, None, keys, False)
    return SJac(tuple(shape), tuple(shape), ties,
                jax.ShapeDtypeStruct(tuple(j.key_size(k) for k in keys), dtype), keys, False)
