"""Would deferring the learning signal's recurrent product make rlif's Diagonal cheaper?

Diagonal's learning signal for the hidden potential, ``alpha L_t + psi_{t-1} (L_t W_rec)``
(``online_vs_bptt.hand_written``), needs one product of the batch with ``W_rec`` at every step.
Its trace contractions already wait for a chunk of 32 steps and meet in one product. This
experiment writes the rule by hand in that chunked form twice:

- ``hand-chunked``: the signal formed at every step, recorded with the traces, contracted per
  chunk (what the engine does);
- ``hand-chunked-deferred``: ``L_t`` and ``psi_{t-1}`` recorded instead, and ``L W_rec`` formed
  for the whole chunk in one ``[32 B, H] x [H, H]`` product before the contraction.

Both must equal the engine's Diagonal (cosine of every gradient leaf > 1 - 1e-6, checked before
timing). Times are medians of calls taken round-robin with BPTT and the engine's Diagonal, as
ratios to BPTT paired by round.

Usage::

    python benchmarks/deferred_signal.py --steps 1600 --repeats 7

Prints a table (markdown) and writes it to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from online_suite import compile_method, method_fn, problem
from online_vs_bptt import cosine, git_revision

CHUNK = 32


def hand_chunked(defer: bool):
    """Diagonal's rule for ``Sequential([LIF(recurrent), LI])`` in chunks of :data:`CHUNK` steps;
    `defer`: the signal's product with ``W_rec`` once per chunk instead of once per step."""

    def run(params, static, x, y):
        lif, li = eqx.combine(params, static).layers
        alpha, thr, kappa, spike = lif.alpha, lif.threshold, li.kappa, lif.surrogate
        n = lif.w_in.shape[0]
        w_in, w_rec, w_out, bias = lif.w_in, lif.w_rec * (1.0 - jnp.eye(n)), li.weight, li.bias
        batch, steps, n_in = x.shape
        n_out = w_out.shape[0]
        if steps % CHUNK:
            raise ValueError(f"--steps must be a multiple of {CHUNK}, got {steps}")
        onehot = jax.nn.one_hot(y, n_out, dtype=x.dtype)

        def step(carry, x_t):
            v, z, o, xbar, zbar, obar, bbar, g_b, loss = carry
            v_t = alpha * v - thr * z + x_t @ w_in.T + z @ w_rec.T
            z_t = spike(v_t - thr)
            o_t = kappa * o + z_t @ w_out.T + bias
            err = jax.nn.softmax(o_t) - onehot
            loss = loss + jnp.sum(jax.nn.logsumexp(o_t, -1) - jnp.sum(o_t * onehot, -1))
            psi_t, psi = spike.derivative(v_t - thr), spike.derivative(v - thr)
            sig = (err @ w_out) * psi_t
            first = (sig, psi) if defer else (alpha * sig + psi * (sig @ w_rec), sig)
            record = (*first, xbar, zbar, obar, err, x_t, z, z_t)
            g_b = g_b + jnp.sum(kappa * err * bbar + err, axis=0)
            new = (v_t, z_t, o_t, alpha * xbar + x_t, alpha * zbar + z, kappa * obar + z_t,
                   kappa * bbar + 1.0, g_b, loss)
            return new, record

        def chunk(carry, xs):
            state, (g_in, g_rec, g_out) = carry
            state, records = jax.lax.scan(step, state, xs)
            a, b, xbar, zbar, obar, err, x_t, z, z_t = (
                r.reshape((-1,) + r.shape[2:]) for r in records)
            sig_prev, sig = (alpha * a + b * (a @ w_rec), a) if defer else (a, b)
            g_in = g_in + sig_prev.T @ xbar + sig.T @ x_t
            g_rec = g_rec + sig_prev.T @ zbar + sig.T @ z
            g_out = g_out + (kappa * err).T @ obar + err.T @ z_t
            return (state, (g_in, g_rec, g_out)), None

        zeros = lambda *shape: jnp.zeros(shape, x.dtype)
        state = (zeros(batch, n), zeros(batch, n), zeros(batch, n_out), zeros(batch, n_in),
                 zeros(batch, n), zeros(batch, n), zeros(batch, n_out), zeros(n_out), zeros())
        grads = (jnp.zeros_like(w_in), jnp.zeros_like(w_rec), jnp.zeros_like(w_out))
        xs = jnp.swapaxes(x, 0, 1).reshape(steps // CHUNK, CHUNK, batch, n_in)
        (state, (g_in, g_rec, g_out)), _ = jax.lax.scan(chunk, (state, grads), xs)
        g_rec = g_rec * (1.0 - jnp.eye(n))
        # Leaf order of the model's parameters: w_in, w_rec, readout weight, readout bias.
        return state[-1] / batch, [g / batch for g in (g_in, g_rec, g_out, state[-2])]

    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the table to this markdown file")
    args = ap.parse_args(argv)
    for name in ("hidden", "steps", "batch", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if args.steps % CHUNK:
        ap.error(f"--steps must be a multiple of {CHUNK}, got {args.steps}")
    net, x, y = problem("rlif", args.hidden, args.steps, args.batch, args.seed)
    params, static = eqx.partition(net, eqx.is_array)
    methods = {"bptt": method_fn("bptt"), "diagonal": method_fn("diagonal"),
               "hand-chunked": hand_chunked(False), "hand-chunked-deferred": hand_chunked(True)}
    compiled, outs = {}, {}
    for name, fn in methods.items():
        compiled[name], outs[name] = compile_method(fn, params, static, x, y)[:2]
    for name in ("hand-chunked", "hand-chunked-deferred"):
        worst = min(cosine([a], [b]) for a, b in zip(outs[name][1], outs["diagonal"][1]))
        if worst < 1 - 1e-6:
            raise SystemExit(f"{name} differs from the engine's Diagonal: cosine {worst}")
    walls = {name: [] for name in compiled}
    for _ in range(args.repeats):
        for name, c in compiled.items():
            start = time.perf_counter()
            jax.block_until_ready(c(params, x, y))
            walls[name].append(time.perf_counter() - start)
    command = "python " + " ".join([sys.argv[0]] + (argv or sys.argv[1:]))
    lines = [f"Command: `{command}`", "",
             (f"Commit {git_revision()}, jax {jax.__version__}; rlif H={args.hidden}, batch "
              f"{args.batch}, T={args.steps}, {args.repeats} rounds; every hand-written rule equals "
              "the engine's Diagonal (cosine > 1 - 1e-6)."), "",
             "| method | median ms | x BPTT (paired) |", "|---|--:|--:|"]
    for name, w in walls.items():
        ratio = statistics.median(a / b for a, b in zip(w, walls["bptt"]))
        lines.append(f"| {name} | {1e3 * statistics.median(w):.1f} | {ratio:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
