"""Time and memory of one training gradient: online transport policies against BPTT.

The network is ``build_model("rlif", 140, H, 20)``: a recurrent LIF layer under a leaky-integrator
readout. The loss is the per-step cross-entropy of the readout against the sample's label, summed
over the sequence and averaged over a batch of 64. Inputs are Bernoulli(0.05) spikes and labels
random integers, both from a fixed seed. One measured call computes the loss and the gradient of
every parameter over the whole sequence.

Methods:

- ``bptt``: ``loss_and_grad(model, x, y, "bptt")`` (reverse mode through ``lax.scan``);
- ``diagonal``, ``immediate``, ``random-k:4``: ``loss_and_grad(model, x, y, policy)``, the trace
  engine's online gradient under :class:`snnplast.Diagonal`, :class:`snnplast.Immediate` and
  :class:`snnplast.RandomK` (``k=4``). RandomK keeps dense traces; it is skipped, with the
  reason printed, when its traces for the batch would exceed ``--max-trace-gib``;
- ``hand-factorised`` and ``hand-per-synapse``: the rule that ``Diagonal`` computes for this
  network, written out by hand in this file (not package code). The factorised one stores one
  low-pass filtered pre-synaptic trace per input ([B, I]) and contracts the batch with a matmul;
  the per-synapse one stores the same eligibility per synapse ([B, H, I]), i.e. the factorisation
  switched off. Both must give Diagonal's gradient (cosine > 0.9999) before anything is timed.

Correctness gates, checked before timing (the script exits non-zero if one fails):

1. ``snnplast.Exact()`` equals BPTT to relative error < 1e-4 on a tiny instance (H=16, T=20, B=4);
2. at every benchmarked size, Diagonal's readout gradient (weight and bias) equals BPTT's to
   cosine > 0.999: the readout's own Jacobian is diagonal (``kappa * I``), so Diagonal carries it
   exactly, and its gradient is exact although the readout has memory;
3. both hand-written references equal Diagonal's whole gradient to cosine > 0.9999;
4. every method's loss equals BPTT's to relative error < 1e-5.

Reported per method and sequence length: tracing + lowering time and XLA compile time (first call,
apart), the median of at least ``--repeats`` timed calls (``jax.block_until_ready``; fast methods
are called until ``--min-seconds`` are spent, at most 50 times; calls are taken round-robin over
the methods so that load on a shared machine affects all of them alike), the ratio to BPTT's time
from the same process (the median of the ratios paired by round), the compiled executable's
temporary memory (``memory_analysis().temp_size_in_bytes``) and the cosine similarity of the
gradient with BPTT's,
for all parameters together (dominated by the readout, whose gradient is exact for every method
here but Immediate) and for the hidden layer's ``w_in`` and ``w_rec`` alone.
A method whose first call after compiling takes longer than ``--max-call-s`` is not repeated; the
table marks its time "(1 call)".

Usage::

    python benchmarks/online_vs_bptt.py                 # H=256, T=100,1000 (several minutes)
    python benchmarks/online_vs_bptt.py --quick         # H=64, T=50,200 (smoke run)
    python benchmarks/online_vs_bptt.py --hidden 128 --steps 100,500 --repeats 7

Results go to ``benchmarks/results/online_vs_bptt.{md,json}`` (``..._quick`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import snnplast
from snnplast.train import build_model, loss_and_grad

N_IN, N_CLASSES, RATE = 140, 20, 0.05


# ----- the problem ---------------------------------------------------------------------------------
def problem(hidden: int, steps: int, batch: int, seed: int):
    """Model, Bernoulli(RATE) input spikes ``[B, T, 140]`` and labels ``[B]``, all from `seed`."""
    k_model, k_x, k_y = jax.random.split(jax.random.PRNGKey(seed), 3)
    model = build_model("rlif", N_IN, hidden, N_CLASSES, key=k_model)
    x = jax.random.bernoulli(k_x, RATE, (batch, steps, N_IN)).astype(jnp.float32)
    y = jax.random.randint(k_y, (batch,), 0, N_CLASSES, dtype=jnp.int32)
    return model, x, y


def package_method(method, block=None):
    """``(params, x, y) -> (loss, grad leaves)`` through the trainer's one dispatch."""

    def run(params, static, x, y):
        (loss, _), grads = loss_and_grad(eqx.combine(params, static), x, y, method, block)
        return loss, jax.tree_util.tree_leaves(grads)

    return run


# ----- the hand-written references -----------------------------------------------------------------
def hand_written(per_synapse: bool):
    """Diagonal's rule for ``Sequential([LIF(recurrent), LI])``, written out by hand.

    With ``psi_t`` the surrogate derivative at ``v_t``, ``err_t = softmax(o_t) - onehot(y)`` and
    ``L_t = (W_out^T err_t) * psi_t``, the engine's learning signal for the hidden potential of
    the previous step is ``d loss_t / d v_{t-1} = alpha L_t + psi_{t-1} (W_rec^T L_t)`` (the
    spike ``z_{t-1}`` folded in through ``psi_{t-1}``), and for the readout ``kappa err_t``. The
    gradient is that signal times the traces of step ``t - 1`` plus the step's immediate term.
    Under Diagonal the hidden traces are ``xbar_t = alpha xbar_{t-1} + x_t`` for ``W_in`` and
    ``zbar_t = alpha zbar_{t-1} + z_{t-1}`` for ``W_rec``, the readout's ``obar_t = kappa
    obar_{t-1} + z_t``: neuron-independent, so they factor into one vector per sample.
    `per_synapse` stores them broadcast per synapse instead ([B, H, I], [B, H, H], [B, K, H]) and
    contracts them element-wise, as an e-prop without the factorisation would.
    """

    def run(params, static, x, y):
        lif, li = eqx.combine(params, static).layers
        if lif.reset != "subtract" or not lif.detach_reset or lif.w_rec is None:
            raise ValueError("the hand-written rule assumes a recurrent LIF with a detached "
                             f"subtractive reset; got reset={lif.reset!r}, "
                             f"detach_reset={lif.detach_reset}")
        alpha, thr, kappa, spike = lif.alpha, lif.threshold, li.kappa, lif.surrogate
        n = lif.w_in.shape[0]
        w_in, w_rec, w_out, bias = lif.w_in, lif.w_rec * (1.0 - jnp.eye(n)), li.weight, li.bias
        batch, n_out = x.shape[0], w_out.shape[0]
        onehot = jax.nn.one_hot(y, n_out, dtype=x.dtype)

        def expand(v, rows):  # a factored trace [B, I] as per-synapse storage [B, rows, I]
            return jnp.broadcast_to(v[:, None, :], (v.shape[0], rows, v.shape[1]))

        def contract(signal, trace):  # sum_b signal[b, j] * trace[b, j, i]
            if per_synapse:
                return jnp.einsum("bj,bji->ji", signal, trace)
            return signal.T @ trace

        def leak(a, trace, new):
            return a * trace + (expand(new, trace.shape[1]) if per_synapse else new)

        def step(carry, x_t):
            v, z, o, tr, grads = carry
            xbar, zbar, obar, bbar = tr
            g_in, g_rec, g_out, g_b, loss = grads
            v_t = alpha * v - thr * z + x_t @ w_in.T + z @ w_rec.T
            z_t = spike(v_t - thr)
            o_t = kappa * o + z_t @ w_out.T + bias
            err = jax.nn.softmax(o_t) - onehot
            loss = loss + jnp.sum(jax.nn.logsumexp(o_t, axis=-1) - jnp.sum(o_t * onehot, -1))
            psi_t, psi = spike.derivative(v_t - thr), spike.derivative(v - thr)
            sig = (err @ w_out) * psi_t
            sig_prev = alpha * sig + psi * (sig @ w_rec)
            g_in = g_in + contract(sig_prev, xbar) + sig.T @ x_t
            g_rec = g_rec + contract(sig_prev, zbar) + sig.T @ z
            g_out = g_out + contract(kappa * err, obar) + err.T @ z_t
            g_b = g_b + jnp.sum(kappa * err * bbar + err, axis=0)
            tr = (leak(alpha, xbar, x_t), leak(alpha, zbar, z), leak(kappa, obar, z_t),
                  kappa * bbar + 1.0)
            return (v_t, z_t, o_t, tr, (g_in, g_rec, g_out, g_b, loss)), None

        zeros = lambda *s: jnp.zeros(s, x.dtype)
        n_in = x.shape[-1]
        if per_synapse:
            tr = (zeros(batch, n, n_in), zeros(batch, n, n), zeros(batch, n_out, n),
                  zeros(batch, n_out))
        else:
            tr = (zeros(batch, n_in), zeros(batch, n), zeros(batch, n), zeros(batch, n_out))
        grads = (jnp.zeros_like(w_in), jnp.zeros_like(w_rec), jnp.zeros_like(w_out),
                 jnp.zeros_like(bias), zeros())
        carry = (zeros(batch, n), zeros(batch, n), zeros(batch, n_out), tr, grads)
        carry, _ = jax.lax.scan(step, carry, jnp.swapaxes(x, 0, 1))
        g_in, g_rec, g_out, g_b, loss = carry[-1]
        g_rec = g_rec * (1.0 - jnp.eye(n))
        # Leaf order of the model's parameters: w_in, w_rec, readout weight, readout bias.
        return loss / batch, [g / batch for g in (g_in, g_rec, g_out, g_b)]

    return run


# ----- measuring -----------------------------------------------------------------------------------
def interleaved_times(compiled: dict, rounds: dict, *args, cpu: dict | None = None) -> dict:
    """Seconds per call of each compiled function ``compiled[name][0](*args)``, taken in turn
    (one call of each per round, ``rounds[name]`` rounds), so that the machine's load falls on
    every method alike. `cpu`: a dict that receives the process's CPU seconds per call
    (``time.process_time``, all threads), which other processes on a shared machine disturb
    less than the wall clock. **Returns:** ``{name: [seconds, ...]}`` for the names in
    `rounds`."""
    times = {name: [] for name in rounds}
    for k in range(max(rounds.values())):
        for name, (fn, _) in compiled.items():
            if k < rounds.get(name, 0):
                start, start_cpu = time.perf_counter(), time.process_time()
                jax.block_until_ready(fn(*args))
                times[name].append(time.perf_counter() - start)
                if cpu is not None:
                    cpu.setdefault(name, []).append(time.process_time() - start_cpu)
    return times


def cosine(a, b) -> float:
    a = np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in a])
    b = np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in b])
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300))


def rel_error(a, b) -> float:
    a = np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in a])
    b = np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in b])
    return float(np.linalg.norm(a - b) / (np.linalg.norm(b) + 1e-300))


def compile_method(fn, params, static, x, y):
    """Lower (tracing the engine included) and compile; run the first call."""
    jitted = jax.jit(lambda p, x, y: fn(p, static, x, y))
    start = time.perf_counter()
    lowered = jitted.lower(params, x, y)
    lower_s = time.perf_counter() - start
    start = time.perf_counter()
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()
    temp = None if memory is None else int(memory.temp_size_in_bytes)
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(params, x, y))
    return compiled, out, lower_s, compile_s, temp, time.perf_counter() - start


def dense_trace_bytes(model, policy, batch: int) -> int:
    """Bytes of the batch's eligibility traces under `policy`, as ``snnplast inspect`` counts
    them (the trace structure the engine fixes before the first step)."""
    runner = snnplast.online.OnlineStep(model, jnp.zeros(N_IN), policy,
                                         lambda o, y: jnp.sum(o))
    return runner.traces.stored_size() * jnp.dtype(runner.dtype).itemsize * batch


def gate_exact(seed: int) -> dict:
    """Gate 1: Exact equals BPTT on a tiny instance."""
    model, x, y = problem(16, 20, 4, seed)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    ref = jax.jit(lambda p: package_method("bptt")(p, static, x, y))(params)
    got = jax.jit(lambda p: package_method(snnplast.Exact())(p, static, x, y))(params)
    err = rel_error(got[1], ref[1])
    print(f"gate 1: Exact vs BPTT (H=16, T=20, B=4): relative error {err:.2e} (need < 1e-4)")
    if not err < 1e-4:
        raise SystemExit("gate 1 failed: Exact does not reproduce BPTT")
    return {"exact_vs_bptt_rel_error": err}


METHODS = ("bptt", "diagonal", "immediate", "random-k:4", "hand-factorised", "hand-per-synapse")
LABELS = {
    "bptt": "BPTT (`loss_and_grad(..., \"bptt\")`)",
    "diagonal": "Diagonal (engine)",
    "immediate": "Immediate (engine)",
    "random-k:4": "RandomK(k=4) (engine)",
    "hand-factorised": "Diagonal's rule, hand-written, factorised traces [B, I]",
    "hand-per-synapse": "Diagonal's rule, hand-written, per-synapse traces [B, H, I]",
}


# Method name -> a maker of ``(params, static, x, y) -> (loss, grad leaves)``; the suite
# (online_suite.py) extends this table.
BUILDERS = {
    "bptt": lambda: package_method("bptt"),
    "diagonal": lambda: package_method(snnplast.Diagonal()),
    "immediate": lambda: package_method(snnplast.Immediate()),
    "random-k:4": lambda: package_method(snnplast.RandomK(k=4)),
    "hand-factorised": lambda: hand_written(per_synapse=False),
    "hand-per-synapse": lambda: hand_written(per_synapse=True),
}


def make(name, builders=None):
    """The method `name` from `builders` (default :data:`BUILDERS`)."""
    builders = BUILDERS if builders is None else builders
    if name not in builders:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(builders)}")
    return builders[name]()


def bench_length(args, steps: int) -> list[dict]:
    model, x, y = problem(args.hidden, steps, args.batch, args.seed)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    names = [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    if names != [".layers[0].w_in", ".layers[0].w_rec", ".layers[1].weight", ".layers[1].bias"]:
        raise SystemExit(f"unexpected parameter leaves {names}: the per-leaf columns assume "
                         "w_in, w_rec, readout weight, readout bias")
    rows, compiled = [], {}
    for name in args.methods:
        row = {"method": name, "T": steps}
        if name == "random-k:4":
            need = dense_trace_bytes(model, snnplast.RandomK(k=4), args.batch)
            row["trace_bytes"] = need
            # Old and new traces (and H~ G) live at once: at least 2x the traces themselves.
            if 2 * need > args.max_trace_gib * 2**30:
                row["skipped"] = (f"dense traces {need / 2**30:.1f} GiB for the batch "
                                  f"(x2 old/new > --max-trace-gib {args.max_trace_gib})")
                print(f"T={steps} {name}: skipped, {row['skipped']}")
                rows.append(row)
                continue
        fn, out, lower_s, compile_s, temp, first_s = compile_method(make(name), params, static,
                                                                    x, y)
        compiled[name] = (fn, out)
        row.update(lower_s=lower_s, compile_s=compile_s, temp_bytes=temp, first_call_s=first_s)
        print(f"T={steps} {name}: trace+lower {lower_s:.1f} s, compile {compile_s:.1f} s, "
              f"temp {temp / 2**20 if temp is not None else float('nan'):.1f} MiB, "
              f"first call after compiling {first_s:.2f} s", flush=True)
        rows.append(row)

    # Gates 2-4 on the first calls' outputs, before any timing.
    loss_ref, g_ref = compiled["bptt"][1]
    for row in rows:
        if row["method"] not in compiled:
            continue
        loss, g = compiled[row["method"]][1]
        row["cos_bptt"] = cosine(g, g_ref)
        row["cos_bptt_per_leaf"] = [cosine([a], [b]) for a, b in zip(g, g_ref)]
        row["loss"] = float(loss)
        loss_err = abs(float(loss) - float(loss_ref)) / abs(float(loss_ref))
        if not loss_err < 1e-5:
            raise SystemExit(f"gate 4 failed at T={steps}: {row['method']} loss {float(loss)} "
                             f"vs BPTT {float(loss_ref)}")
    if "diagonal" in compiled:
        g_diag = compiled["diagonal"][1][1]
        readout = cosine(g_diag[2:], g_ref[2:])
        print(f"gate 2 (T={steps}): Diagonal readout gradient vs BPTT cosine {readout:.6f} "
              "(need > 0.999)")
        if not readout > 0.999:
            raise SystemExit("gate 2 failed: Diagonal's readout gradient differs from BPTT's")
        for row in rows:
            if row["method"] in compiled and row["method"].startswith("hand-"):
                c = cosine(compiled[row["method"]][1][1], g_diag)
                row["cos_diagonal"] = c
                print(f"gate 3 (T={steps}): {row['method']} vs Diagonal cosine {c:.7f} "
                      "(need > 0.9999)")
                if not c > 0.9999:
                    raise SystemExit(f"gate 3 failed: {row['method']} is not Diagonal's rule")
    else:
        print("gates 2-3 skipped: diagonal is not among --methods")

    # A method slower than --max-call-s per call is reported from its one call after compiling.
    slow = {r["method"] for r in rows if r.get("first_call_s", 0.0) > args.max_call_s}
    # At least --repeats calls each, more for fast methods (up to --min-seconds of calls), so
    # that calls of ~0.1 s on a loaded machine still give a stable median.
    rounds = {r["method"]: max(args.repeats, min(50, math.ceil(args.min_seconds
                                                                 / r["first_call_s"])))
              for r in rows if r["method"] in compiled and r["method"] not in slow}
    for row in rows:
        if row["method"] in slow:
            row["single_call"] = True
            row["times_s"] = [row["first_call_s"]]
            row["median_s"] = row["first_call_s"]
    times = interleaved_times(compiled, rounds, params, x, y)
    for row in rows:
        if row["method"] in times:
            row["times_s"] = times[row["method"]]
            row["median_s"] = statistics.median(times[row["method"]])
            row["min_s"], row["max_s"] = min(row["times_s"]), max(row["times_s"])
    # The ratio to BPTT: the median of the paired ratios over the rounds both ran (calls of one
    # round are adjacent in time, so a change of load on the machine hits both alike); the
    # ratio of medians for a method called once.
    base = statistics.median(times["bptt"])
    for row in rows:
        if row["method"] in times:
            row["ratio_bptt"] = statistics.median(
                a / b for a, b in zip(times[row["method"]], times["bptt"]))
        elif "median_s" in row:
            row["ratio_bptt"] = row["median_s"] / base
        if "median_s" in row:
            print(f"T={steps} {row['method']}: median {row['median_s'] * 1e3:.1f} ms of "
                  f"{len(row['times_s'])} calls ({row['ratio_bptt']:.2f}x BPTT), "
                  f"cos {row['cos_bptt']:.4f}", flush=True)
    return rows


def _mib(n):
    return "-" if n is None else (f"{n / 2**20:.1f}" if n >= 2**20 / 10 else f"{n / 2**20:.3f}")


def git_revision() -> str:
    """The commit measured (``+dirty`` when package files differ from it), or ``unknown``."""
    import subprocess

    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "snnplast"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"Command: `{meta['command']}`",
        "",
        (f"jax {meta['jax']}, snnplast {meta['snnplast']} ({meta['commit']}), "
         f"Python {meta['python']}, "
         f"{meta['machine']}, os.cpu_count() = {meta['cpu_count']}, {meta['date']}."),
        (f"rlif 140 -> {meta['hidden']} -> 20 (LI readout), batch {meta['batch']}, per-step "
         f"cross-entropy, seed {meta['seed']}; median of >= {meta['repeats']} calls per method "
         f"(fast ones: up to {meta['min_seconds']:g} s of calls, at most 50), taken round-robin "
         f"over the methods (one call where the first took > {meta['max_call_s']:g} s); "
         f"'x BPTT' is the median of the ratios paired by round."),
        (f"Gate 1: Exact vs BPTT (H=16, T=20, B=4) relative error "
         f"{meta['gates']['exact_vs_bptt_rel_error']:.1e}."),
        "",
        ("| T | method | median ms | x BPTT | trace+lower s | compile s | temp MiB | "
         "cos vs BPTT: all | w_in | w_rec | cos vs Diagonal |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['T']} | {LABELS[r['method']]} | skipped: {r['skipped']} "
                         "| | | | | | | | |")
            continue
        cd = f"{r['cos_diagonal']:.6f}" if "cos_diagonal" in r else ""
        once = " (1 call)" if r.get("single_call") else ""
        leaf = r["cos_bptt_per_leaf"]  # w_in, w_rec, readout weight, readout bias
        lines.append(
            f"| {r['T']} | {LABELS[r['method']]} | {r['median_s'] * 1e3:.1f}{once} | "
            f"{r['ratio_bptt']:.2f} | {r['lower_s']:.2f} | {r['compile_s']:.1f} | "
            f"{_mib(r['temp_bytes'])} | {r['cos_bptt']:.4f} | {leaf[0]:.4f} | {leaf[1]:.4f} | "
            f"{cd} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=None, help="hidden neurons (default 256)")
    parser.add_argument("--steps", default=None,
                        help="comma-separated sequence lengths (default 100,1000)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed calls per method, at least (>= 5)")
    parser.add_argument("--min-seconds", type=float, default=5.0,
                        help="fast methods are called until about this much time is spent "
                             "(at most 50 calls)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)} (bptt always runs)")
    parser.add_argument("--max-trace-gib", type=float, default=2.0,
                        help="skip RandomK when twice its batch traces exceed this")
    parser.add_argument("--max-call-s", type=float, default=None,
                        help="a method whose first call after compiling takes longer is not "
                             "repeated; its one call is reported (default 120, 5 with --quick)")
    parser.add_argument("--quick", action="store_true", help="H=64, T=50,200: a smoke run")
    parser.add_argument("--out", default=None,
                        help="output path without suffix (default benchmarks/results/"
                             "online_vs_bptt, or ..._quick with --quick)")
    args = parser.parse_args(argv)
    args.hidden = args.hidden or (64 if args.quick else 256)
    if args.max_call_s is None:
        args.max_call_s = 5.0 if args.quick else 120.0
    steps = [int(s) for s in (args.steps or ("50,200" if args.quick else "100,1000")).split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            parser.error(f"unknown method {m!r}; allowed: {', '.join(METHODS)}")
    args.methods = ["bptt"] + [m for m in methods if m != "bptt"]
    if args.repeats < 5:
        parser.error(f"--repeats must be at least 5, got {args.repeats}")
    if args.hidden < 1 or args.batch < 1 or min(steps) < 1:
        parser.error("--hidden, --batch and --steps must be positive")
    default_out = "benchmarks/results/online_vs_bptt" + ("_quick" if args.quick else "")
    out = Path(args.out or default_out)

    meta = {
        "command": "python " + " ".join([sys.argv[0].replace(os.getcwd() + os.sep, "")]
                                        + (sys.argv[1:] if argv is None else list(argv))),
        "jax": jax.__version__, "snnplast": snnplast.__version__, "commit": git_revision(),
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "backend": jax.default_backend(),
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "hidden": args.hidden, "steps": steps, "batch": args.batch, "repeats": args.repeats,
        "seed": args.seed, "max_trace_gib": args.max_trace_gib, "max_call_s": args.max_call_s,
        "min_seconds": args.min_seconds,
    }
    print(f"jax {meta['jax']} ({meta['backend']}), os.cpu_count()={meta['cpu_count']}, "
          f"H={args.hidden}, T={steps}, B={args.batch}")
    meta["gates"] = gate_exact(args.seed)
    rows = []
    for t in steps:
        rows += bench_length(args, t)
    text = markdown(meta, rows)
    print()
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
