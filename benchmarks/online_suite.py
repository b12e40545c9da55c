"""The online-vs-BPTT suite: time and memory of one training gradient against T and H.

For each model (``rlif``, ``ralif``: ``build_model(model, 140, H, 20)``, a recurrent (adaptive)
LIF layer under a leaky-integrator readout), hidden size H and sequence length T, one measured
call computes the per-step cross-entropy of a batch of Bernoulli(0.05) spikes with random labels
and the gradient of every parameter over the whole sequence, by each method:

- ``bptt``: reverse mode through ``lax.scan`` (the trainer's dispatch);
- ``diagonal``: the engine's Diagonal (e-prop) with the default accumulation
  (``snnplast.online.resolve_block``: blocks where a trace is stored per synapse, the whole
  sequence as one block when short enough, else the step recursion); ``diagonal-step``: the
  same, step by step (``block=1``); ``diagonal-block:K``: in blocks of K steps (``block=K``);
  ``diagonal-product-per-step``: step by step with a trace
  contraction at every step (``contract_every=1``), not a chunk of steps at a time;
  ``diagonal-hoisted``: ``diagonal`` with the input-only part of the step (``W_in x_t``)
  evaluated a chunk of steps at once (``hoist=True``); ``diagonal-kept``: ``diagonal`` with a
  whole-sequence block keeping every step's records instead of recomputing them
  (``recompute=0``); ``diagonal-late-signal``: ``diagonal`` with a chunk's learning signals
  formed in one product after its steps (``late=True``), not each at its step (the default,
  ``snnplast.online.LATE_SIGNAL``; ``benchmarks/results/online_suite_late_signal.md`` was run
  at commit 9eb8f68, where the default was late and this method, then named
  ``diagonal-signal-per-step``, ran ``late=False``);
- ``immediate``, ``random-k:4``, ``exact``: the engine's other policies (RandomK and Exact keep
  dense traces; skipped, with the reason, when the batch's traces would exceed ``--max-trace-gib``);
- ``hand-factorised``, ``hand-per-synapse`` (rlif): Diagonal's rule written by hand
  (``online_vs_bptt.py``); ``hand-alif`` (ralif): Diagonal's rule for ALIF written by hand as
  e-prop is usually written (Bellec et al. 2020): the potential's eligibility factored into a
  pre-synaptic trace, the adaptation's eligibility one number per synapse ``[B, H, I]``.

Gates before timing (the script stops if one fails): every method's loss equals BPTT's (relative
1e-5); ``diagonal`` and ``diagonal-step`` agree (cosine > 1 - 1e-6); every hand-written rule
equals ``diagonal`` (cosine > 0.9999). Calls are timed round-robin over the methods (the median of
>= ``--repeats`` calls each, ``block_until_ready``; compile apart); "x BPTT" is the median of the
ratios paired by round, of the wall clock and of the process's CPU time (all threads; less
disturbed by other processes on a shared machine); memory is the compiled executable's ``temp_size_in_bytes``.

Usage::

    python benchmarks/online_suite.py                       # the full grid (hours on 2 cores)
    python benchmarks/online_suite.py --hidden 256 --steps 100,400,1600 --methods bptt,diagonal

Results: ``benchmarks/results/online_suite.{json,md,png}`` (or ``--out``), with the command and
the commit.
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

import snnplast
from snnplast.train import build_model, cross_entropy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from online_vs_bptt import (
    BUILDERS,
    cosine,
    dense_trace_bytes,
    git_revision,
    interleaved_times,
    make,
    package_method,
)

N_IN, N_CLASSES, RATE = 140, 20, 0.05
METHODS = ("bptt", "diagonal", "diagonal-step", "diagonal-product-per-step", "diagonal-hoisted",
           "diagonal-kept", "diagonal-late-signal", "immediate",
           "random-k:4", "exact", "hand-factorised", "hand-per-synapse", "hand-alif")
HAND = {"rlif": ("hand-factorised", "hand-per-synapse"), "ralif": ("hand-alif",)}
DENSE = {"random-k:4": snnplast.RandomK(k=4), "exact": snnplast.Exact()}
# The engine's methods: (policy, block) as the builders pass them, for the mode column.
ENGINE = {"diagonal": (snnplast.Diagonal(), None), "diagonal-step": (snnplast.Diagonal(), 1),
          "diagonal-product-per-step": (snnplast.Diagonal(), 1),
          "diagonal-hoisted": (snnplast.Diagonal(), None),
          "diagonal-kept": (snnplast.Diagonal(), None),
          "diagonal-late-signal": (snnplast.Diagonal(), None),
          "immediate": (snnplast.Immediate(), None), "random-k:4": (DENSE["random-k:4"], None),
          "exact": (DENSE["exact"], None)}


def explicit_block(name: str) -> int | None:
    """K of a method ``diagonal-block:K`` (Diagonal in blocks of K steps), else None."""
    prefix = "diagonal-block:"
    if not name.startswith(prefix):
        return None
    k = name[len(prefix):]
    if not k.isdigit() or int(k) < 1:
        raise ValueError(f"{name!r}: the block must be a positive integer, got {k!r}")
    return int(k)


def method_fn(name: str):
    """``(params, static, x, y) -> (loss, grad leaves)`` of method `name`."""
    k = explicit_block(name)
    if k is not None:
        return package_method(snnplast.Diagonal(), block=k)
    return make(name, SUITE_BUILDERS)


def accumulation(net, x, name) -> str:
    """What the engine runs for method `name` ("step" or "blocked K"), "" for the others."""
    if explicit_block(name) is not None:
        policy, block = snnplast.Diagonal(), explicit_block(name)
    elif name not in ENGINE:
        return ""
    else:
        policy, block = ENGINE[name]
    runner = snnplast.online.OnlineStep(net, x[0, 0], policy, cross_entropy)
    used = snnplast.online.resolve_block(runner, block, x.shape[1])
    return "step" if used == 1 else f"blocked {used}"


def problem(model: str, hidden: int, steps: int, batch: int, seed: int):
    k_model, k_x, k_y = jax.random.split(jax.random.PRNGKey(seed), 3)
    net = build_model(model, N_IN, hidden, N_CLASSES, key=k_model)
    x = jax.random.bernoulli(k_x, RATE, (batch, steps, N_IN)).astype(jnp.float32)
    y = jax.random.randint(k_y, (batch,), 0, N_CLASSES, dtype=jnp.int32)
    return net, x, y


def hand_alif(params, static, x, y):
    """Diagonal's rule for ``Sequential([ALIF(recurrent), LI])``, written out by hand.

    With ``psi_t`` the surrogate derivative at ``v_t - theta - beta a_t``, ``err_t = softmax(o_t)
    - onehot(y)`` and ``sig_t = (W_out^T err_t) psi_t`` (``d loss_t / d v_t``), the learning
    signals of the previous step's state are ``dz = W_rec^T sig - beta (1 - rho) sig``,
    ``L_v = alpha sig + psi_{t-1} dz`` and ``L_a = -rho beta sig - beta psi_{t-1} dz``. The
    eligibility of ``v`` is the pre-synaptic trace ``xbar_t = alpha xbar_{t-1} + x_t`` (the
    same for every neuron); that of ``a`` is per synapse:
    ``e_t = (rho - (1 - rho) beta psi_{t-1}) e_{t-1} + (1 - rho) psi_{t-1} xbar_{t-1}``.
    The readout's traces are those of the LIF reference.
    """
    alif, li = eqx.combine(params, static).layers
    if not alif.detach_reset or alif.w_rec is None:
        raise ValueError("the hand-written rule assumes a recurrent ALIF with a detached reset")
    alpha, rho, beta, thr = alif.alpha, alif.rho, alif.beta, alif.threshold
    kappa, spike = li.kappa, alif.surrogate
    n = alif.w_in.shape[0]
    mask = 1.0 - jnp.eye(n, dtype=x.dtype)
    w_in, w_rec, w_out, bias = alif.w_in, alif.w_rec * mask, li.weight, li.bias
    batch, n_out, n_in = x.shape[0], w_out.shape[0], x.shape[-1]
    onehot = jax.nn.one_hot(y, n_out, dtype=x.dtype)

    def step(carry, x_t):
        v, a, z, o, tr, grads = carry
        xbar, zbar, obar, bbar, e_in, e_rec = tr
        g_in, g_rec, g_out, g_b, loss = grads
        v_t = alpha * v - thr * z + x_t @ w_in.T + z @ w_rec.T
        a_t = rho * a + (1.0 - rho) * z
        u_t = v_t - thr - beta * a_t
        z_t = spike(u_t)
        o_t = kappa * o + z_t @ w_out.T + bias
        err = jax.nn.softmax(o_t) - onehot
        loss = loss + jnp.sum(jax.nn.logsumexp(o_t, axis=-1) - jnp.sum(o_t * onehot, -1))
        psi_t, psi = spike.derivative(u_t), spike.derivative(v - thr - beta * a)
        sig = (err @ w_out) * psi_t
        dz = sig @ w_rec - beta * (1.0 - rho) * sig
        l_v = alpha * sig + psi * dz
        l_a = -rho * beta * sig - beta * psi * dz
        g_in = g_in + l_v.T @ xbar + jnp.einsum("bj,bji->ji", l_a, e_in) + sig.T @ x_t
        g_rec = g_rec + l_v.T @ zbar + jnp.einsum("bj,bji->ji", l_a, e_rec) + sig.T @ z
        g_out = g_out + (kappa * err).T @ obar + err.T @ z_t
        g_b = g_b + jnp.sum(kappa * err * bbar + err, axis=0)
        decay = (rho - (1.0 - rho) * beta * psi)[:, :, None]
        gain = ((1.0 - rho) * psi)[:, :, None]
        e_in = decay * e_in + gain * xbar[:, None, :]
        e_rec = decay * e_rec + gain * zbar[:, None, :]
        tr = (alpha * xbar + x_t, alpha * zbar + z, kappa * obar + z_t, kappa * bbar + 1.0,
              e_in, e_rec)
        return (v_t, a_t, z_t, o_t, tr, (g_in, g_rec, g_out, g_b, loss)), None

    zeros = lambda *s: jnp.zeros(s, x.dtype)
    tr = (zeros(batch, n_in), zeros(batch, n), zeros(batch, n), zeros(batch, n_out),
          zeros(batch, n, n_in), zeros(batch, n, n))
    grads = (jnp.zeros_like(w_in), jnp.zeros_like(w_rec), jnp.zeros_like(w_out),
             jnp.zeros_like(bias), zeros())
    carry = (zeros(batch, n), zeros(batch, n), zeros(batch, n), zeros(batch, n_out), tr, grads)
    carry, _ = jax.lax.scan(step, carry, jnp.swapaxes(x, 0, 1))
    g_in, g_rec, g_out, g_b, loss = carry[-1]
    return loss / batch, [g / batch for g in (g_in, g_rec * mask, g_out, g_b)]


def product_per_step(params, static, x, y):
    """Diagonal by the step recursion with its trace contractions at every step
    (``contract_every=1``), as before they were taken a chunk of steps at a time."""
    loss, grads = snnplast.online.online_loss_and_grad(
        eqx.combine(params, static), x, jnp.broadcast_to(y[:, None], x.shape[:2]),
        snnplast.Diagonal(), cross_entropy, block=1, contract_every=1)
    return loss, jax.tree_util.tree_leaves(grads)


def hoisted(params, static, x, y):
    """Diagonal as ``diagonal`` runs it, with the input-only part of the step (``W_in x_t``)
    evaluated a chunk of steps at once before the chunk (``hoist=True``)."""
    loss, grads, _ = snnplast.online.online_loss_and_grad(
        eqx.combine(params, static), x, jnp.broadcast_to(y[:, None], x.shape[:2]),
        snnplast.Diagonal(), cross_entropy, with_scores=True, hoist=True)
    return loss, jax.tree_util.tree_leaves(grads)


def late_signal(params, static, x, y):
    """Diagonal as ``diagonal`` runs it, except that a chunk's learning signals are formed in
    one product after its steps (``late=True``) instead of at each step."""
    loss, grads, _ = snnplast.online.online_loss_and_grad(
        eqx.combine(params, static), x, jnp.broadcast_to(y[:, None], x.shape[:2]),
        snnplast.Diagonal(), cross_entropy, with_scores=True, late=True)
    return loss, jax.tree_util.tree_leaves(grads)


def records_kept(params, static, x, y):
    """Diagonal as ``diagonal`` runs it, except that a whole-sequence block keeps every step's
    records instead of recomputing them from kept states (``recompute=0``)."""
    loss, grads, _ = snnplast.online.online_loss_and_grad(
        eqx.combine(params, static), x, jnp.broadcast_to(y[:, None], x.shape[:2]),
        snnplast.Diagonal(), cross_entropy, with_scores=True, recompute=0)
    return loss, jax.tree_util.tree_leaves(grads)


SUITE_BUILDERS = {
    **BUILDERS,
    "diagonal-step": lambda: package_method(snnplast.Diagonal(), block=1),
    "diagonal-product-per-step": lambda: product_per_step,
    "diagonal-hoisted": lambda: hoisted,
    "diagonal-kept": lambda: records_kept,
    "diagonal-late-signal": lambda: late_signal,
    "exact": lambda: package_method(DENSE["exact"]),
    "hand-alif": lambda: hand_alif,
}


def compile_method(fn, params, static, x, y, call=True):
    """Compile `fn` for these arguments; `call`: also run it once (else output and first-call
    time are None)."""
    jitted = jax.jit(lambda p, x, y: fn(p, static, x, y))
    start = time.perf_counter()
    compiled = jitted.lower(params, x, y).compile()
    compile_s = time.perf_counter() - start
    memory = compiled.memory_analysis()
    temp = None if memory is None else int(memory.temp_size_in_bytes)
    if not call:
        return compiled, None, compile_s, temp, None
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(params, x, y))
    return compiled, out, compile_s, temp, time.perf_counter() - start


def bench_case(args, model: str, hidden: int, steps: int) -> list[dict]:
    net, x, y = problem(model, hidden, steps, args.batch, args.seed)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    methods = [m for m in args.methods
               if not m.startswith("hand-") or m in HAND.get(model, ())]
    rows, compiled = [], {}
    for name in methods:
        row = {"model": model, "H": hidden, "T": steps, "method": name,
               "mode": accumulation(net, x, name)}
        rows.append(row)
        if name in DENSE:
            need = dense_trace_bytes(net, DENSE[name], args.batch)
            row["trace_bytes"] = need
            if 2 * need > args.max_trace_gib * 2**30:
                row["skipped"] = f"dense traces {need / 2**30:.1f} GiB"
                print(f"{model} H={hidden} T={steps} {name}: skipped, {row['skipped']}")
                continue
        if name in args.skip_after and steps > args.skip_after[name]:
            row["skipped"] = f"not run above T={args.skip_after[name]} (time)"
            continue
        fn, out, compile_s, temp, first_s = compile_method(
            method_fn(name), params, static, x, y, call=not args.memory_only)
        compiled[name] = (fn, out)
        row.update(compile_s=compile_s, temp_bytes=temp)
        if args.memory_only:
            print(f"{model} H={hidden} T={steps} {name}: compile {compile_s:.1f} s, temp "
                  f"{(temp or 0) / 2**20:.1f} MiB", flush=True)
            continue
        row["first_call_s"] = first_s
        print(f"{model} H={hidden} T={steps} {name}: compile {compile_s:.1f} s, temp "
              f"{(temp or 0) / 2**20:.1f} MiB, first call {first_s:.2f} s", flush=True)
    if args.memory_only:
        return rows

    loss_ref, g_ref = compiled["bptt"][1]
    for row in rows:
        if row["method"] not in compiled:
            continue
        loss, g = compiled[row["method"]][1]
        row["cos_bptt"] = cosine(g, g_ref)
        row["cos_bptt_hidden"] = cosine(g[:2], g_ref[:2])
        err = abs(float(loss) - float(loss_ref)) / abs(float(loss_ref))
        if not err < 1e-5:
            raise SystemExit(f"gate failed: {row['method']} loss {float(loss)} vs BPTT "
                             f"{float(loss_ref)}")
        if "diagonal" in compiled and row["method"] != "diagonal" and (
                row["method"].startswith("hand-") or row["method"].startswith("diagonal-")):
            c = cosine(g, compiled["diagonal"][1][1])
            row["cos_diagonal"] = c
            need = 1 - 1e-6 if row["method"].startswith("diagonal-") else 0.9999
            if not c > need:
                raise SystemExit(f"gate failed: {row['method']} vs diagonal cosine {c}")

    slow = {r["method"] for r in rows if r.get("first_call_s", 0.0) > args.max_call_s}
    rounds = {r["method"]: max(args.repeats, min(30, math.ceil(args.min_seconds
                                                                 / r["first_call_s"])))
              for r in rows if r["method"] in compiled and r["method"] not in slow}
    cpu: dict = {}
    times = interleaved_times(compiled, rounds, params, x, y, cpu=cpu)
    for row in rows:
        name = row["method"]
        if name in times:
            row["times_s"] = times[name]
            row["median_s"] = statistics.median(times[name])
            row["ratio_bptt"] = statistics.median(a / b for a, b in zip(times[name],
                                                                         times["bptt"]))
            row["cpu_s"] = cpu[name]
            row["cpu_ratio_bptt"] = statistics.median(a / b for a, b in zip(cpu[name],
                                                                             cpu["bptt"]))
        elif name in slow:
            row["single_call"] = True
            row["median_s"] = row["first_call_s"]
            row["ratio_bptt"] = row["first_call_s"] / statistics.median(times["bptt"])
        if "median_s" in row:
            print(f"{model} H={hidden} T={steps} {name}: {row['median_s'] * 1e3:.1f} ms "
                  f"({row['ratio_bptt']:.2f}x BPTT, CPU time "
                  f"{row.get('cpu_ratio_bptt', float('nan')):.2f}x), cos {row['cos_bptt']:.4f}",
                  flush=True)
    # Ratios between two online methods, paired by round as well.
    for row in rows:
        for ref in ("hand-factorised", "hand-alif"):
            if row["method"] == "diagonal" and ref in times:
                row[f"ratio_{ref}"] = statistics.median(
                    a / b for a, b in zip(times["diagonal"], times[ref]))
                row[f"cpu_ratio_{ref}"] = statistics.median(
                    a / b for a, b in zip(cpu["diagonal"], cpu[ref]))
    return rows


def _mib(n):
    return "-" if n is None else f"{n / 2**20:.1f}"


def memory_table(rows) -> list[str]:
    """One row per (model, H, method), one column per T: compiled temp MiB (and the mode), with
    the ratio of the longest T to the shortest."""
    steps = sorted({r["T"] for r in rows})
    cells: dict = {}
    for r in rows:
        key = (r["model"], r["H"], r["method"])
        if "skipped" in r:
            cells.setdefault(key, {})[r["T"]] = f"skipped: {r['skipped']}"
        elif r.get("temp_bytes") is not None:
            mode = f" ({r['mode']})" if r.get("mode") else ""
            cells.setdefault(key, {})[r["T"]] = f"{_mib(r['temp_bytes'])}{mode}"
    temp = {(r["model"], r["H"], r["method"], r["T"]): r.get("temp_bytes") for r in rows}
    ratio = len(steps) > 1
    lines = ["| model | H | method | " + " | ".join(f"T={t} MiB" for t in steps)
             + (f" | T={steps[-1]} / T={steps[0]} |" if ratio else " |"),
             "|---|--:|---|" + "--:|" * (len(steps) + ratio)]
    for (model, h, method), by_t in cells.items():
        row = f"| {model} | {h} | {method} | " + " | ".join(by_t.get(t, "") for t in steps)
        lo, hi = temp.get((model, h, method, steps[0])), temp.get((model, h, method, steps[-1]))
        if ratio:
            row += f" | {hi / lo:.2f}" if lo and hi else " | "
        lines.append(row + " |")
    return lines


def markdown(meta, rows) -> str:
    if meta.get("memory_only"):
        return "\n".join([
            f"Command: `{meta['command']}`" + (f" ({meta['note']})" if "note" in meta else ""),
            "",
            (f"jax {meta['jax']} ({meta['backend']}), commit {meta['commit']}, Python "
             f"{meta['python']}, {meta['date']}; batch {meta['batch']}, 140 inputs, 20 classes; "
             f"compiled temporary memory (`memory_analysis().temp_size_in_bytes`) of one "
             f"training gradient, methods compiled, not run; the mode the engine chose in "
             f"brackets (default block {meta['default_block']})."),
            "",
            *memory_table(rows)]) + "\n"
    lines = [
        f"Command: `{meta['command']}`" + (f" ({meta['note']})" if "note" in meta else ""),
        "",
        (f"jax {meta['jax']} ({meta['backend']}), commit {meta['commit']}, Python "
         f"{meta['python']}, os.cpu_count() = {meta['cpu_count']}, {meta['date']}; batch "
         f"{meta['batch']}, 140 inputs, 20 classes, seed {meta['seed']}; `diagonal` runs the "
         f"default accumulation (one block up to `whole_sequence_steps`, else blocks of "
         f"{meta['default_block']}, where some trace is per synapse; else step by step), "
         f"see the `mode` column."),
        "",
        ("| model | H | T | method | mode | median ms | x BPTT | x BPTT (CPU time) | compile s "
         "| temp MiB | cos BPTT (all / hidden) | cos Diagonal |"),
        "|---|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['model']} | {r['H']} | {r['T']} | {r['method']} | "
                         f"{r.get('mode', '')} | skipped: {r['skipped']} | | | | | | |")
            continue
        if "median_s" not in r:
            continue
        once = " (1 call)" if r.get("single_call") else ""
        cd = f"{r['cos_diagonal']:.6f}" if "cos_diagonal" in r else ""
        cpu = f"{r['cpu_ratio_bptt']:.2f}" if "cpu_ratio_bptt" in r else ""
        lines.append(
            f"| {r['model']} | {r['H']} | {r['T']} | {r['method']} | {r.get('mode', '')} | "
            f"{r['median_s'] * 1e3:.1f}{once} | {r['ratio_bptt']:.2f} | {cpu} | "
            f"{r['compile_s']:.1f} | "
            f"{_mib(r['temp_bytes'])} | {r['cos_bptt']:.4f} / {r['cos_bptt_hidden']:.4f} | "
            f"{cd} |")
    extra = [r for r in rows if any(k.startswith("ratio_hand") for k in r)]
    if extra:
        lines += ["", "Diagonal (default accumulation) against the hand-written rule, paired by round:", ""]
        for r in extra:
            for k, v in r.items():
                if k.startswith("ratio_hand"):
                    cpu = r.get("cpu_" + k)
                    lines.append(f"- {r['model']} H={r['H']} T={r['T']}: diagonal / "
                                 f"{k[6:]} = {v:.2f}"
                                 + (f" (CPU time {cpu:.2f})" if cpu is not None else ""))
    return "\n".join(lines) + "\n"


def plot(rows, path: Path) -> None:
    memory_only = not any("median_s" in r for r in rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(2, len(models), figsize=(5.5 * len(models), 8), squeeze=False)
    for col, model in enumerate(models):
        hs = sorted({r["H"] for r in rows if r["model"] == model})
        h = 256 if 256 in hs else hs[len(hs) // 2]
        sel = [r for r in rows if r["model"] == model and r["H"] == h
               and r.get("temp_bytes") is not None]
        for name in dict.fromkeys(r["method"] for r in sel):
            pts = sorted((r["T"], r.get("median_s"), r["temp_bytes"]) for r in sel
                         if r["method"] == name)
            timed = [p for p in pts if p[1] is not None]
            if timed:
                axes[0][col].plot([p[0] for p in timed], [p[1] * 1e3 for p in timed], "o-",
                                  label=name)
            axes[1][col].plot([p[0] for p in pts], [p[2] / 2**20 for p in pts], "o-",
                              label=name)
        for row, label in ((0, "ms per gradient"), (1, "compiled temp MiB")):
            ax = axes[row][col]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("T (steps)")
            ax.set_ylabel(label)
            ax.set_title(f"{model}, H={h}")
        axes[1 if memory_only else 0][col].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="rlif,ralif")
    parser.add_argument("--hidden", default="128,256,512")
    parser.add_argument("--steps", default="100,400,1600")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--max-call-s", type=float, default=60.0,
                        help="a method whose first call takes longer is not repeated")
    parser.add_argument("--max-trace-gib", type=float, default=2.0)
    parser.add_argument("--skip-after", default="",
                        help="METHOD:T,... do not run METHOD above sequence length T")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-only", action="store_true",
                        help="only compile every method and report its temp memory (no call, "
                             "no gate, no timing)")
    parser.add_argument("--out", default="benchmarks/results/online_suite")
    parser.add_argument("--render", action="store_true",
                        help="only write the markdown and the plot from --out's JSON (what an "
                             "interrupted run measured)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.render:
        saved = json.loads(out.with_suffix(".json").read_text())
        meta, rows = saved["meta"], saved["rows"]
        meta.setdefault("note", "rendered from the JSON of a run stopped before its end")
        out.with_suffix(".md").write_text(markdown(meta, rows))
        plot(rows, out.with_suffix(".png"))
        print(markdown(meta, rows))
        return 0
    models = [m for m in args.models.split(",") if m]
    hidden = [int(h) for h in args.hidden.split(",")]
    steps = [int(t) for t in args.steps.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        try:
            known = m in METHODS or explicit_block(m) is not None
        except ValueError as error:
            parser.error(str(error))
        if not known:
            parser.error(f"unknown method {m!r}; allowed: {', '.join(METHODS)}, "
                         f"diagonal-block:K")
    args.methods = ["bptt"] + [m for m in methods if m != "bptt"]
    args.skip_after = {k: int(v) for k, v in (s.split(":") for s in args.skip_after.split(",")
                                              if s)}
    if args.repeats < 5:
        parser.error(f"--repeats must be at least 5, got {args.repeats}")
    # XLA's flags change what is measured (one thread or two): part of the command.
    flags = f'XLA_FLAGS="{os.environ["XLA_FLAGS"]}" ' if os.environ.get("XLA_FLAGS") else ""
    meta = {
        "command": flags + "python " + " ".join([sys.argv[0].replace(os.getcwd() + os.sep, "")]
                                                + (sys.argv[1:] if argv is None else list(argv))),
        "jax": jax.__version__, "commit": git_revision(), "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "backend": jax.default_backend(),
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "batch": args.batch,
        "seed": args.seed, "default_block": snnplast.online.DEFAULT_BLOCK,
        "load_average": os.getloadavg(), "memory_only": args.memory_only,
    }
    rows = []
    out.parent.mkdir(parents=True, exist_ok=True)
    for model in models:
        for h in hidden:
            for t in steps:
                rows += bench_case(args, model, h, t)
                # Written after every case: a long run interrupted keeps what it measured.
                out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows},
                                                               indent=1))
    meta["load_average_end"] = os.getloadavg()
    text = markdown(meta, rows)
    print(text)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    plot(rows, out.with_suffix(".png"))
    print(f"wrote {out}.{{md,json,png}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
