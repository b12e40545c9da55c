"""Experiment 6 ("Temporal credit is free"): immediate derivatives (d=0) with RMSprop, Adam and
SGD against exact RTRL; the trace decay lam; and the memory of d=0 vs exact RTRL.

Task: the frequency-shift stream of ``exp_frequency_shift.py`` (Elman RNN n=64, linear readout,
sine one step ahead, the frequency changes at the shift, an update every step).

- **d=0** is ``Immediate()``: ``G_t = F_t``, no Jacobian propagated; the hidden state alone
  carries temporal information forward.
- **lam** is the decay of an eligibility trace that carries each unit's own Jacobian entry:
  ``Diagonal(lam)``, ``G_t = lam * D_t G_{t-1} + F_t`` (lam = 0 is d=0).
- **Recovery** here is ``(L_frozen - L) / (L_frozen - L_exact)`` where *frozen* stops learning at
  the shift (no adaptation at all) and *exact* is ``Exact()`` with Adam; this baseline differs
  from experiment 1's (k=0), because here the traces themselves are what varies.

Memory: the bytes of the trace a policy carries per stream (from the trace structure the engine
derives: d=0 keeps the immediate influence in factored form), computed for n = 64, 256, 1024,
and the bytes the learner's state actually holds (state, traces, gradient sums, optimizer state)
measured where it fits in memory.

    python benchmarks/exp_immediate.py          # T=2000 (shift 1000), 5 seeds; memory n<=256 measured
    python benchmarks/exp_immediate.py --full   # T=4000
"""

from __future__ import annotations

import _experiments as ex
import jax
import jax.numpy as jnp
import numpy as np

import snnplast as sp
from snnplast.online import OnlineStep

PAPER = {"d=0 + RMSprop": "matches or exceeds exact", "d=0 + SGD": "fails (no output bypass)",
         "lam=0.95 + Adam": "~0%"}


def trace_bytes(model, policy, dtype_bytes=4) -> int:
    """Bytes of the traces one stream carries under `policy`, from the derived trace structure."""
    x0 = jnp.zeros(model.layers[0].input_shape)
    runner = OnlineStep(model, x0, policy, ex.mse)
    zeros = jax.eval_shape(lambda: runner.traces.zeros(jnp.float32))
    return sum(int(np.prod(a.shape)) * dtype_bytes for a in jax.tree_util.tree_leaves(zeros))


def held_bytes(model, policy) -> int:
    """Bytes of an OnlineLearner's state after init (allocated arrays, measured)."""
    learner = sp.OnlineLearner(policy, ex.mse)
    state = learner.init(model, jnp.zeros(model.layers[0].input_shape))
    return sum(a.nbytes for a in jax.tree_util.tree_leaves(state))


def main(argv=None):
    p = ex.parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--sgd-lr", type=float, default=3e-2)
    p.add_argument("--memory-ns", default="64,256,1024")
    p.add_argument("--measure-up-to", type=int, default=256,
                   help="measure the learner's state only for n up to this (exact at n=1024 "
                        "needs ~4.3 GB)")
    args = p.parse_args(argv)
    steps = args.steps or (4000 if args.full else 2000)
    seeds = args.seeds or 5
    shift = steps // 2
    stream = lambda seed: ex.sine_shift(steps, shift)
    make = lambda key: ex.elman(args.n, key)
    runs = {  # name: (policy factory or None for frozen, optimizer, lr)
        "exact + Adam": (sp.Exact, "adam", 3e-3),
        "frozen at shift": (None, "adam", 3e-3),
        "d=0 + RMSprop": (sp.Immediate, "rmsprop", 3e-3),
        "d=0 + Adam": (sp.Immediate, "adam", 3e-3),
        f"d=0 + SGD (lr {args.sgd_lr:g})": (sp.Immediate, "sgd", args.sgd_lr),
        "exact + RMSprop": (sp.Exact, "rmsprop", 3e-3),
        "lam=0.5 + Adam": (lambda: sp.Diagonal(lam=0.5), "adam", 3e-3),
        "lam=0.95 + Adam": (lambda: sp.Diagonal(lam=0.95), "adam", 3e-3),
        "lam=1 (Diagonal) + Adam": (sp.Diagonal, "adam", 3e-3),
    }
    res, log = {}, ex.job_log(args, "immediate")
    for name, (pol, opt, lr) in ex.progress(list(runs.items()), "immediate"):
        res.update({name: ex.run_methods(make, {name: pol}, stream, seeds=seeds, shift=shift,
                                         optimizer=opt, lr=lr, desc=name, log=log)[name]})
    rec = ex.recoveries(res, "frozen at shift", "exact + Adam")
    rows = [[name, ex.fmt_sci(r["post_shift_mse"]), ex.fmt_mean_sd(rec[name], 100, unit="%"),
             PAPER.get(name.split(" (")[0], "")] for name, r in res.items()]
    table = ex.markdown_table(["method + optimizer", "post-shift MSE", "recovery", "paper"], rows)

    mem_rows, memory = [], {}

    def mb(b):
        return f"{b / 2**20:.3g} MiB"

    def held(r):
        return mb(r["held_bytes"]) if "held_bytes" in r else "not measured"

    for n in [int(v) for v in args.memory_ns.split(",")]:
        model = ex.elman(n, jax.random.PRNGKey(0))
        row = {}
        for name, pol in (("d=0", sp.Immediate()), ("exact", sp.Exact())):
            row[name] = {"trace_bytes": trace_bytes(model, pol)}
            if n <= args.measure_up_to:
                row[name]["held_bytes"] = held_bytes(model, pol)
        memory[n] = row
        mem_rows.append([n, mb(row["d=0"]["trace_bytes"]), mb(row["exact"]["trace_bytes"]),
                         f"{row['exact']['trace_bytes'] / row['d=0']['trace_bytes']:.3g}x",
                         held(row["d=0"]), held(row["exact"]),
                         "12.6 MB vs 12.9 GB" if n == 1024 else ""])
    mem_table = ex.markdown_table(
        ["n", "d=0 trace (computed)", "exact trace (computed)", "ratio",
         "d=0 learner state (measured)", "exact learner state (measured)", "paper"], mem_rows)
    notes = (f"Elman RNN n={args.n} + linear readout, sine 2pi/25 -> 2pi/12 at step {shift} of "
             f"{steps}, an update every step, {seeds} seeds; Adam and RMSprop at lr 3e-3, SGD at "
             f"lr {args.sgd_lr:g}. Recovery: (L_frozen - L) / (L_frozen - L_exact+Adam), per seed."
             "\n\n## Memory (float32, one stream)\n\n" + mem_table +
             "\n\nComputed: the trace arrays the engine allocates under the policy (their shapes "
             "from the derived structure). Measured: the bytes of every array of the "
             "OnlineLearner's state after init (cell state, traces, gradient sums, Adam moments).")
    fig, (a1, a2) = ex.figure(2)
    ex.plot_curves(a1, res, shift)
    ns = sorted(memory)
    for name in ("d=0", "exact"):
        a2.loglog(ns, [memory[n][name]["trace_bytes"] for n in ns], marker="o",
                  label=f"{name} trace (computed)")
    a2.set_xlabel("n")
    a2.set_ylabel("bytes")
    a2.legend(fontsize=7)
    ex.write_results("immediate", args.out, command=ex.command_line(argv, __file__),
                     title="Immediate derivatives (d=0) vs exact RTRL; trace decay; memory",
                     table=table, notes=notes, figure=fig,
                     data={"n": args.n, "steps": steps, "shift": shift, "seeds": seeds,
                           "recovery": rec, "results": res,
                           "memory": {str(k): v for k, v in memory.items()}})
    print(table)
    print(mem_table)
    return res, memory


if __name__ == "__main__":
    main()
