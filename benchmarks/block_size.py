"""How the block size of per-unit trace accumulation changes time and memory.

One training gradient of ``build_model(model, 140, H, 20)`` (batch of Bernoulli(0.05) spikes,
random labels, per-step cross-entropy) under ``snnplast.Diagonal()`` with traces accumulated
``block`` steps at a time, for each block size given, and BPTT beside them. Calls are taken
round-robin (median of ``--repeats`` each; ``x BPTT`` is the median of the ratios paired by
round); memory is the compiled executable's ``temp_size_in_bytes``. ``block=1`` is the step
recursion. The gradients of all block sizes must agree (cosine > 1 - 1e-6) before timing.

With ``--contract-every K1,K2,...`` the runs are the step recursion (``block=1``) with its trace
contractions taken every ``K`` steps in one product instead
(``online_loss_and_grad(..., contract_every=K)``; ``1``: a product at every step), the choice
behind ``snnplast.online.CONTRACT_EVERY``.

Usage::

    python benchmarks/block_size.py --model ralif --hidden 256 --batch 32 --steps 400 \\
        --blocks 1,8,16,32,64,128
    python benchmarks/block_size.py --model rlif --hidden 256 --batch 64 --steps 1600 \\
        --contract-every 1,8,16,32,64,128 --out benchmarks/results/contract_every

Results: ``benchmarks/results/block_size.{json,md}`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

import snnplast
from snnplast.train import cross_entropy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from online_suite import compile_method, package_method, problem
from online_vs_bptt import cosine, git_revision


def contract_every(k: int):
    """Diagonal's gradient by the step recursion, contractions every `k` steps."""

    def run(params, static, x, y):
        loss, grads = snnplast.online.online_loss_and_grad(
            eqx.combine(params, static), x, jnp.broadcast_to(y[:, None], x.shape[:2]),
            snnplast.Diagonal(), cross_entropy, block=1, contract_every=k)
        return loss, jax.tree_util.tree_leaves(grads)

    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ralif")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--blocks", default="1,8,16,32,64,128")
    parser.add_argument("--contract-every", default="",
                        help="K1,K2,...: time the step recursion's chunked contractions instead")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/block_size")
    args = parser.parse_args(argv)
    blocks = [int(b) for b in args.blocks.split(",")]
    net, x, y = problem(args.model, args.hidden, args.steps, args.batch, args.seed)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    runs = {"bptt": package_method("bptt")}
    if args.contract_every:
        blocks = [int(k) for k in args.contract_every.split(",")]
        runs.update({f"contract every {k}": contract_every(k) for k in blocks})
    else:
        runs.update({f"block {b}": package_method(snnplast.Diagonal(), block=b)
                     for b in blocks})
    rows, compiled = [], {}
    for name, fn in runs.items():
        c, out, compile_s, temp, first_s = compile_method(fn, params, static, x, y)
        compiled[name] = (c, out)
        rows.append({"run": name, "compile_s": compile_s, "temp_bytes": temp})
        print(f"{name}: compile {compile_s:.1f} s, temp {temp / 2**20:.1f} MiB, "
              f"first call {first_s:.2f} s", flush=True)
    ref = compiled[list(runs)[1]][1][1]
    for row in rows[1:]:
        c = cosine(compiled[row["run"]][1][1], ref)
        if not c > 1 - 1e-6:
            raise SystemExit(f"{row['run']} disagrees with {list(runs)[1]}: cosine {c}")
    times = {name: [] for name in compiled}
    for _ in range(args.repeats):
        for name, (c, _) in compiled.items():
            start = time.perf_counter()
            jax.block_until_ready(c(params, x, y))
            times[name].append(time.perf_counter() - start)
    for row in rows:
        t = times[row["run"]]
        row["median_ms"] = 1e3 * statistics.median(t)
        row["ratio_bptt"] = statistics.median(a / b for a, b in zip(t, times["bptt"]))
    command = "python " + " ".join([sys.argv[0].replace(os.getcwd() + os.sep, "")]
                                   + (sys.argv[1:] if argv is None else list(argv)))
    lines = [f"Command: `{command}`", "",
             (f"jax {jax.__version__} ({jax.default_backend()}), commit {git_revision()}, "
              f"os.cpu_count() = {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; "
              f"{args.model} H={args.hidden}, batch {args.batch}, T={args.steps}, Diagonal."),
             "",
             "| run | median ms | x BPTT | compile s | temp MiB |", "|---|--:|--:|--:|--:|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['median_ms']:.1f} | {r['ratio_bptt']:.2f} | "
                     f"{r['compile_s']:.1f} | {r['temp_bytes'] / 2**20:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "rows": rows,
                                                    "times_s": times}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
