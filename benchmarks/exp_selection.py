"""Experiment 3 of the sparse-RTRL paper: does it matter *which* k=4 paths are transported?

The frequency-shift task of ``exp_frequency_shift.py`` with ``RandomK(4, select=...)``:

- ``random``: a fresh uniform sample of 4 units at every step;
- ``fixed``: one sample per stream, kept throughout;
- ``adversarial``: at every step the 4 columns of ``H - D`` with the smallest norm (the paths
  that carry the least), per sample.

Recovery is ``(L_{k=0} - L) / (L_{k=0} - L_exact)`` per seed, as in experiment 1.

    python benchmarks/exp_selection.py           # n=64, T=2000 (shift 1000), 5 seeds
    python benchmarks/exp_selection.py --full    # T=4000
"""

from __future__ import annotations

import _experiments as ex

import snnplast as sp


def main(argv=None):
    p = ex.parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--steps", type=int, default=None)
    ex.add_setting(p)
    args = p.parse_args(argv)
    steps = args.steps or (4000 if args.full else 2000)
    seeds = args.seeds or 5
    shift = steps // 2
    methods = {"k=0": lambda: sp.RandomK(0), "exact": sp.Exact}
    for sel in ("random", "fixed", "adversarial"):
        methods[sel] = lambda sel=sel: sp.RandomK(args.k, select=sel)
    name = "selection" + ex.setting_suffix(args) + ("_full" if args.full else "")
    res = ex.run_methods(lambda key: ex.elman(args.n, key), methods,
                         lambda seed: ex.sine_shift(steps, shift), seeds=seeds, shift=shift,
                         lr=args.lr, readout=args.readout, desc="selection",
                         log=ex.job_log(args, name))
    rec = ex.recoveries(res, "k=0", "exact")
    rec_log = ex.recoveries(res, "k=0", "exact", log=True)
    paper = "all recover (selection-invariant)"
    late = ex.late_mse(res)
    rows = [[name, ex.fmt_sci(r["post_shift_mse"]), ex.fmt_mean_sd(rec[name], 100, unit="%"),
             ex.fmt_mean_sd(rec_log[name], 100, unit="%"), ex.fmt_sci(late[name]),
             paper if name in ("random", "fixed", "adversarial") else ""]
            for name, r in res.items()]
    table = ex.markdown_table([f"selection (k={args.k})", "post-shift MSE", "recovery",
                               "recovery on log(MSE)", "MSE, last quarter", "paper"], rows)
    notes = (f"Elman RNN n={args.n} + linear readout, sine 2pi/25 -> 2pi/12 at step {shift} of "
             f"{steps}; {ex.setting_note(args)}; {seeds} seeds.")
    fig, (a1,) = ex.figure(width=7)
    ex.plot_curves(a1, res, shift)
    ex.write_results(name, args.out, command=ex.command_line(argv, __file__),
                     title=f"Selection invariance at k={args.k}, n={args.n}", table=table,
                     notes=notes, figure=fig,
                     data={"n": args.n, "k": args.k, "lr": args.lr, "readout": args.readout, "steps": steps, "shift": shift,
                           "seeds": seeds, "recovery": rec, "recovery_log": rec_log,
                           "late_mse": late, "results": res})
    print(table)
    return res, rec


if __name__ == "__main__":
    main()
