"""Experiment 4 of the sparse-RTRL paper: stability on chaotic dynamics (Lorenz attractor).

An Elman RNN (n=64) with a linear readout predicts the Lorenz state one step ahead (3 inputs, 3
outputs, coordinates / 20) while it learns online (``OnlineLearner``, Adam 3e-3, an update every
step); ``rho`` changes from 28 to 35 at the shift. Every seed initialises the model (and
RandomK's selections) differently on the *same* trajectory, so the spread across seeds is the
learning method's, not the data's. Stability is the coefficient of variation of the post-shift
MSE across seeds, ``CV = sd / mean`` (sample sd), exact RTRL vs ``RandomK(4)`` (and k=0).

    python benchmarks/exp_lorenz.py           # n=64, T=4000 (shift at 2000, as in the paper), 5 seeds
    python benchmarks/exp_lorenz.py --full    # the same with T=8000
"""

from __future__ import annotations

import _experiments as ex
import numpy as np

PAPER = {"k=4": "13%", "exact": "88%"}


def main(argv=None):
    p = ex.parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--steps", type=int, default=None)
    args = p.parse_args(argv)
    steps = args.steps or (8000 if args.full else 4000)
    seeds = args.seeds or 5
    shift = steps // 2
    xs, ys = ex.lorenz_shift(steps, shift)
    res = ex.run_methods(lambda key: ex.elman(args.n, key, n_in=3, n_out=3),
                         ex.random_k_methods([0, 4]), lambda seed: (xs, ys), seeds=seeds,
                         shift=shift, desc="lorenz", log=ex.job_log(args, "lorenz"))
    rows, cvs = [], {}
    for name, r in res.items():
        v = np.asarray(r["post_shift_mse"], dtype=float)
        m, sd, bad = ex.mean_sd(v)
        cvs[name] = sd / m if np.isfinite(m) and not bad else float("nan")
        rows.append([name, ex.fmt_sci(v), f"{100 * cvs[name]:.0f}%" if not bad
                     else f"undefined ({bad}/{seeds} diverged)",
                     ", ".join(f"{x:.2e}" for x in v), PAPER.get(name, "")])
    table = ex.markdown_table(["method", "post-shift MSE", "CV across seeds", "per seed",
                               "paper CV"], rows)
    notes = (f"Lorenz (sigma 10, beta 8/3, RK4 dt 0.01), rho 28 -> 35 at step {shift} of {steps}; "
             f"Elman RNN n={args.n}, 3 inputs, linear readout of 3; OnlineLearner, Adam 3e-3, "
             f"update every step; {seeds} seeds on one trajectory. k=0 = Diagonal.")
    fig, axes = ex.figure(3, width=4)
    for ax, name in zip(axes, ["k=0", "k=4", "exact"]):
        for s, curve in enumerate(res[name]["curve"]):
            c = np.asarray(curve, dtype=float)
            w = max(1, steps // 100)
            ax.semilogy(np.convolve(c, np.ones(w) / w, mode="valid"), lw=0.8, label=f"seed {s}")
        ax.axvline(shift, ls=":", c="k")
        ax.set_title(name)
        ax.set_xlabel("step")
    axes[0].set_ylabel("MSE (running mean)")
    axes[0].legend(fontsize=6)
    ex.write_results("lorenz", args.out, command=ex.command_line(argv, __file__),
                     title="Lorenz attractor: stability of exact vs sparse RTRL", table=table,
                     notes=notes, figure=fig,
                     data={"n": args.n, "steps": steps, "shift": shift, "seeds": seeds,
                           "cv": cvs, "results": res})
    print(table)
    return res, cvs


if __name__ == "__main__":
    main()
