"""The step recursion's trace contractions, a chunk of steps at a time in one product.

Step ``t`` adds ``sum_b row_t[b] @ G_{t-1}[b]`` to the gradient of each traced pair. For a trace
that factorises (LIF's pre-synaptic trace: one vector per sample, not one number per synapse)
that is a ``[units, B] @ [B, inputs]`` matmul per step: 64-row products, slow on a CPU, plus a
weight-shaped accumulation. The sum over steps is a sum over ``(time, batch)``, so ``K`` steps'
rows and traces, recorded as the steps run, meet in ONE ``[units, K B] @ [K B, inputs]``
product. The trace recursion itself stays step by step; only the order of the additions
changes (the same numbers up to float rounding). The records cost ``K`` times the rows and
the traces of the pairs deferred, so only traces that store fewer numbers than their
parameter, or no more than their state leaf, are deferred: dense traces (Exact, RandomK) and
per-synapse ones (ALIF's adaptation) keep the product at every step.
"""

from __future__ import annotations

import jax
import numpy as np

from ..engine import SJac, contract_batch
from ._online_step import OnlineStep
from ._traces import stored_numbers

# Steps per chunk of deferred contractions, chosen by measurement (rlif, 256 neurons, batch 64,
# paired in one process: T=400, chunks of 16 / 32 / 64 took 0.70 / 0.66 / 0.64x BPTT against
# 0.88 with a product per step, at 4.9 / 8.6 / 15.8 MiB of records at T=1600;
# benchmarks/results/contract_every.md: T=1600, 0.89x with chunks of 32 against 1.01x).
CONTRACT_EVERY = 32


def deferred_pairs(runner: OnlineStep) -> frozenset:
    """The traced pairs ``(a, q)`` whose contractions the step recursion defers: those whose
    trace stores, per sample, fewer numbers than parameter ``q`` has or no more than state leaf
    ``a`` has (recording them for a chunk of steps costs about what the rows cost)."""
    traces = runner.traces
    out = set()
    for (a, q), structure in traces.structure.items():
        stored = stored_numbers(structure, traces.shapes[(a, q)])
        n_param = int(np.prod(runner.graph.phi_nodes[q].shape, dtype=np.int64))
        n_state = int(np.prod(runner.graph.s_shapes[a], dtype=np.int64))
        if stored < n_param or stored <= n_state:
            out.add((a, q))
    return frozenset(out)


def contract_terms(runner: OnlineStep, grad_phi: list, terms) -> list:
    """``grad_phi`` plus the deferred terms of a chunk of steps (:meth:`OnlineStep.step_terms`
    stacked by a scan: values ``[K, B, ...]``), one product over ``K B`` per pair.

    **Returns:** the new ``grad_phi`` (a list).
    """
    signals, traces = terms
    kinds = runner.signal_kinds()
    order = sorted({kinds[k] for k in traces})
    grad_phi = list(grad_phi)
    for (a, q), tr in traces.items():
        row = signals[order.index(kinds[(a, q)])]
        flat = SJac(tr.out_shape, tr.in_shape, tr.ties, _flat2(tr.val), tr.val_keys, False)
        grad_phi[q] = grad_phi[q] + contract_batch(_flat2(row), flat)
    return grad_phi


def _flat2(a):
    return jax.numpy.reshape(a, (-1,) + a.shape[2:])
