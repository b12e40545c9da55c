"""HeadSparse(f): trace bytes, compiled scratch memory and time of one gradient, against f.

Run: ``python benchmarks/head_sparse.py [--out benchmarks/results/head_sparse.md]``. For
``LinearAttention(16, 32, 8)`` and a user-written multi-head cell (``tests/user_cells.py``
``MultiHead(16, 64, heads=8)``: one input projection reshaped into heads, a recurrent matrix per
head), batch 8, T = 32, float32, ``snnplast.gradients(..., method=snnplast.HeadSparse(f))`` in
its default mode for f in {0.25, 0.5, 1}, and with ``block=32`` (every head, the default
before) for f = 0.25: the trace numbers stored per sample, the compiled temporary memory
(``memory_analysis().temp_size_in_bytes``) and the median wall and CPU time of 7 calls per
case, cases taken in turn (compile excluded, one process). Runs against any checkout
(``PYTHONPATH``), so the same command gives the before and after of a change.
"""

import argparse
import os
import statistics
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp

import snnplast as sp
from snnplast.online import OnlineStep, resolve_block

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from user_cells import MultiHead

N_IN, BATCH, T, REPEATS = 16, 8, 32, 7
FRACTIONS = (0.25, 0.5, 1.0)


def _loss(out, y):
    return jnp.sum((out - y) ** 2)


def _stored_bytes(cell, policy, x0, block):
    """Trace bytes per sample in the mode ``online_loss_and_grad`` runs with `block`."""
    runner = OnlineStep(cell, x0, policy, _loss)
    try:
        from snnplast.online._head_gathered import GatheredHeadStep
    except ImportError:  # a checkout from before gathered heads
        GatheredHeadStep = None
    gathered = GatheredHeadStep.build(runner) if GatheredHeadStep and block is None else None
    if gathered is not None:
        return 4 * gathered.stored_size(), "step, selected heads"
    block = resolve_block(runner, block)
    mode = f"blocks of {block}" if block > 1 else "step, every head"
    return 4 * runner.traces.stored_size(), mode


def compile_one(cell, f, block, key):
    """The compiled gradient of ``cell`` under ``HeadSparse(f)``, its arguments and memory."""
    policy = sp.HeadSparse(f)
    k1, k2 = jax.random.split(key)
    xs = jax.random.normal(k1, (BATCH, T, N_IN))
    _, outs = jax.vmap(lambda x: sp.unroll(cell, x))(xs)
    ys = jax.random.normal(k2, outs.shape)
    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def grad(p, xs, ys):
        from snnplast.online import online_loss_and_grad

        return online_loss_and_grad(eqx.combine(p, static), xs, ys, policy, _loss,
                                    block=block)[1]

    compiled = jax.jit(grad).lower(params, xs, ys).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    jax.block_until_ready(compiled(params, xs, ys))
    stored, mode = _stored_bytes(cell, policy, xs[0, 0], block)
    return compiled, (params, xs, ys), stored, temp, mode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args()
    key = jax.random.PRNGKey(0)
    cells = {
        "LinearAttention(16, 32, 8)": sp.LinearAttention(N_IN, 32, 8, key=key),
        "user MultiHead(16, 64, heads=8)": MultiHead(N_IN, 64, key, heads=8),
    }
    lines = [("| cell | f | mode | traces per sample | compiled temp | wall per gradient | "
             "CPU per gradient |"), "|---|--:|---|--:|--:|--:|--:|"]
    print("\n".join(lines), flush=True)
    for name, cell in cells.items():
        # (f, block): the default for each fraction, and an explicit block of 32 steps, which
        # keeps every head (the default before gathered heads: blocks where H is per unit,
        # else the step recursion), measured in the same process.
        cases = [(f, None) for f in FRACTIONS] + [(FRACTIONS[0], 32)]
        runs = {c: compile_one(cell, *c, key) for c in cases}
        wall = {c: [] for c in cases}
        cpu = {c: [] for c in cases}
        # Cases take turns, so that a burst of load elsewhere hits them alike.
        for _ in range(REPEATS):
            for c, (compiled, call_args, *_) in runs.items():
                t0, c0 = time.perf_counter(), time.process_time()
                jax.block_until_ready(compiled(*call_args))
                wall[c].append(time.perf_counter() - t0)
                cpu[c].append(time.process_time() - c0)
        for (f, block), (_, _, stored, temp, mode) in runs.items():
            c = (f, block)
            mode = mode if block is None else f"block={block}: {mode}"
            line = (f"| {name} | {f} | {mode} | {stored / 1024:.1f} KiB | "
                    f"{temp / 2**20:.2f} MiB | {statistics.median(wall[c]) * 1e3:.1f} ms | "
                    f"{statistics.median(cpu[c]) * 1e3:.1f} ms |")
            lines.append(line)
            print(line, flush=True)
    if args.out:
        from snnplast._atomic import atomic_write_bytes

        atomic_write_bytes(args.out, "\n".join(
            ["# HeadSparse(f): memory and time against f", "",
             (f"`python benchmarks/head_sparse.py --out {args.out}`; batch {BATCH}, T={T}, "
             f"{N_IN} inputs, float32, median of {REPEATS} gradients per case, cases "
             f"taken in turn (compile excluded); CPU is the process's CPU time (all threads), "
             f"steadier than wall time on a shared machine. JAX {jax.__version__} on "
             f"{jax.devices()[0].platform}."), ""] + lines).encode() + b"\n")


if __name__ == "__main__":
    main()
