"""The trace update's multiplication order: planned (cheapest order, shared first factors summed
first) against right to left (each carried product applied to the trace factor by factor, the
update before plans), in one process, calls interleaved.

One training gradient of the network ``snnplast train`` builds (random spikes, as ``snnplast
bench``) is compiled twice, once per order; then `repeats` rounds each time one call of either.
Reported: the median milliseconds per training step and per time step of each, the median of the
per-round ratios, the compiled scratch memory, and the largest relative difference between the
two gradients (the orders are the same sums, so only rounding differs).

    python benchmarks/trace_order.py                         # ralif, 16 hidden, random-k:4, exact
    python benchmarks/trace_order.py --hidden 32 --steps 20 --methods random-k:4
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import _experiments as ex
import equinox as eqx
import jax
import numpy as np

import snnplast.online._traces as traces_module
from snnplast._cli._bench import _gradient_fn, problem
from snnplast.engine import compose
from snnplast.train import parse_method, temp_bytes


def _right_to_left_terms(chains):
    out = []
    for c in chains:
        acc = c[-1]
        for f in reversed(c[:-1]):
            acc = compose(f, acc)
        out.append(acc)
    return out


def _compile(method, static, params, x, y, right_to_left: bool):
    planned = traces_module._carried_terms
    if right_to_left:
        traces_module._carried_terms = _right_to_left_terms
    try:
        return _gradient_fn(parse_method(method), None, static).lower(params, x, y).compile()
    finally:
        traces_module._carried_terms = planned


def _rel(a, b) -> float:
    la = [np.asarray(v, np.float64) for v in jax.tree_util.tree_leaves(a)]
    lb = [np.asarray(v, np.float64) for v in jax.tree_util.tree_leaves(b)]
    num = sum(float(np.sum((u - v) ** 2)) for u, v in zip(la, lb))
    return (num / max(sum(float(np.sum(v**2)) for v in lb), 1e-300)) ** 0.5


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ralif")
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--inputs", type=int, default=140)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--methods", default="random-k:4,exact")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--name", default=None, help="result file name (default from the settings)")
    p.add_argument("--out", type=Path, default=ex.RESULTS)
    args = p.parse_args(argv)
    net, x, y = problem(args.model, args.hidden, args.inputs, args.batch, args.steps)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    rows, data = [], {}
    for method in args.methods.split(","):
        fns = {o: _compile(method, static, params, x, y, o == "right to left")
               for o in ("planned", "right to left")}
        grads = {o: jax.block_until_ready(f(params, x, y)) for o, f in fns.items()}
        times = {o: [] for o in fns}
        for _ in ex.progress(range(args.repeats), method):
            for o, f in fns.items():
                t0 = time.perf_counter()
                jax.block_until_ready(f(params, x, y))
                times[o].append(1e3 * (time.perf_counter() - t0))
        med = {o: statistics.median(t) for o, t in times.items()}
        ratio = statistics.median(b / a for a, b in zip(times["planned"], times["right to left"]))
        mem = {o: temp_bytes(f) / 2**20 for o, f in fns.items()}
        rel = _rel(grads["planned"], grads["right to left"])
        data[method] = {"ms": times, "median_ms": med, "ratio": ratio, "temp_mib": mem,
                        "rel_diff": rel}
        rows.append([method, f"{med['right to left']:.0f}", f"{med['planned']:.0f}",
                     f"{med['planned'] / args.steps:.2f}", f"{ratio:.2f}x",
                     f"{mem['right to left']:.1f} / {mem['planned']:.1f}", f"{rel:.1e}"])
    table = ex.markdown_table(
        ["method", "ms / training step, right to left", "ms / training step, planned",
         "ms / time step, planned", "speedup (median of per-round ratios)",
         "scratch MiB right to left / planned", "gradient rel. difference"], rows)
    name = args.name or f"trace_order_{args.model}_h{args.hidden}_T{args.steps}"
    notes = (f"{args.model}, {args.hidden} hidden, {args.inputs} inputs, batch {args.batch}, "
             f"{args.steps} time steps (one training gradient, step recursion); median of "
             f"{args.repeats} interleaved rounds after one warm-up call each, one process. The "
             f"machine is shared (2 cores), so absolute times are noisy; the ratio is taken per "
             f"round.")
    fig, (ax,) = ex.figure()
    for n, (o, color) in enumerate((("right to left", "tab:gray"), ("planned", "tab:blue"))):
        ax.bar(np.arange(len(data)) + 0.4 * n, [data[m]["median_ms"][o] for m in data], 0.4,
               label=o, color=color)
    ax.set_xticks(np.arange(len(data)) + 0.2, list(data))
    ax.set_ylabel("ms per training step")
    ax.legend(fontsize=7)
    ex.write_results(name, args.out, command=ex.command_line(argv, __file__),
                     title="Trace update: planned multiplication order vs right to left",
                     table=table, notes=notes, figure=fig, data={"settings": vars(args) | {
                         "out": str(args.out)}, "methods": data})
    print(table)


if __name__ == "__main__":
    main()
