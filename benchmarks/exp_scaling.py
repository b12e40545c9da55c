"""Experiment 2 of the sparse-RTRL paper: a fixed k=4 as the network grows (n = 64, 128, 256).

The frequency-shift task of ``exp_frequency_shift.py`` (same stream, model family, optimizer and
recovery definition: ``(L_{k=0} - L_{k=4}) / (L_{k=0} - L_exact)`` per seed), at several sizes.
Exact RTRL costs ``O(n^4)`` per step (its trace is ``n x n^2`` for ``W_rec``), so the CPU default
is shorter and smaller than the paper's.

    python benchmarks/exp_scaling.py            # n = 64, 128; T=1000 (shift 500); 3 seeds
    python benchmarks/exp_scaling.py --full     # n = 64, 128, 256; T=2000; 5 seeds
"""

from __future__ import annotations

import _experiments as ex
import numpy as np

PAPER = {64: "84", 128: "", 256: "78"}


def main(argv=None):
    p = ex.parser(__doc__.splitlines()[0])
    p.add_argument("--ns", default=None, help="comma-separated sizes")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--steps", type=int, default=None)
    ex.add_setting(p)
    args = p.parse_args(argv)
    default_ns = "64,128,256" if args.full else "64,128"
    ns = [int(n) for n in (args.ns or default_ns).split(",")]
    # Sizes other than the default get their own files, so a run at one more size (n=256 alone,
    # hours of exact RTRL) sits beside the default run instead of replacing it.
    ns_suffix = "" if args.ns in (None, default_ns) else "_n" + "-".join(map(str, ns))
    steps = args.steps or (2000 if args.full else 1000)
    seeds = args.seeds or (5 if args.full else 3)
    shift = steps // 2
    stream = lambda seed: ex.sine_shift(steps, shift)
    methods = ex.random_k_methods([0, args.k])
    name = "scaling" + ex.setting_suffix(args) + ns_suffix + ("_full" if args.full else "")
    log = ex.job_log(args, name)  # an interrupted run resumes where it stopped
    per_n, rows = {}, []
    for n in ns:
        res = ex.run_methods(lambda key, n=n: ex.elman(n, key), methods, stream, seeds=seeds,
                             shift=shift, lr=args.lr, readout=args.readout, desc=f"n={n}",
                             log=log)
        rec = ex.recoveries(res, "k=0", "exact")
        rec_log = ex.recoveries(res, "k=0", "exact", log=True)
        late = ex.late_mse(res)
        per_n[n] = {"results": res, "recovery": rec, "recovery_log": rec_log, "late_mse": late}
        rows.append([n, f"{100 * args.k / n:.1f}%", ex.fmt_sci(res["k=0"]["post_shift_mse"]),
                     ex.fmt_sci(res[f"k={args.k}"]["post_shift_mse"]),
                     ex.fmt_sci(res["exact"]["post_shift_mse"]),
                     ex.fmt_mean_sd(rec[f"k={args.k}"], 100, unit="%"),
                     ex.fmt_mean_sd(rec_log[f"k={args.k}"], 100, unit="%"),
                     " / ".join(f"{np.mean(late[m]):.1e}" for m in ("k=0", f"k={args.k}", "exact")),
                     PAPER.get(n, "")])
    table = ex.markdown_table(
        ["n", "k/n", "k=0 MSE", f"k={args.k} MSE", "exact MSE", f"recovery k={args.k}",
         "recovery on log(MSE)", f"MSE last quarter k=0 / k={args.k} / exact (seed mean)",
         "paper recovery %"], rows)
    notes = (f"Elman RNN + linear readout, sine 2pi/25 -> 2pi/12 at step {shift} of {steps}, "
             f"{ex.setting_note(args)}; {seeds} seeds; k=0 = Diagonal.")
    fig, (ax,) = ex.figure()
    for key, lab in (("recovery", "linear"), ("recovery_log", "log(MSE)")):
        m = [ex.mean_sd(per_n[n][key][f"k={args.k}"])[:2] for n in ns]
        ax.errorbar(ns, [100 * v[0] for v in m], [100 * v[1] for v in m], marker="o", capsize=3,
                    label=lab)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n (hidden units)")
    ax.set_ylabel(f"recovery at k={args.k} (%)")
    ax.legend(fontsize=7)
    ex.write_results(name,
                     args.out, command=ex.command_line(argv, __file__),
                     title=f"Scaling: k={args.k} at n = {', '.join(map(str, ns))}", table=table,
                     notes=notes, figure=fig,
                     data={"ns": ns, "k": args.k, "lr": args.lr, "readout": args.readout, "steps": steps, "shift": shift, "seeds": seeds,
                           "per_n": {str(n): v for n, v in per_n.items()}})
    print(table)
    return per_n


if __name__ == "__main__":
    main()
