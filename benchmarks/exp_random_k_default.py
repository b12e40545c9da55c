"""RandomK's default, chosen by measurement: rescale the sampled paths by n/k, or not?

An Elman RNN (n=32) with a linear readout predicts a sine one step ahead; the frequency changes
halfway; an ``OnlineLearner`` with Adam (lr 3e-3) updates every step. Per seed and method: the
post-shift MSE, whether the run diverged (a NaN or inf loss), and, on the initial model over the
first 200 steps, the cosine and norm ratio of the method's per-step gradient against Exact's
(``snnplast.diagnostics.gradient_alignment``): scaling by n/k makes the transported part unbiased
in expectation but multiplies its variance, and the product through time of n/k-scaled random
Jacobians is what grows without bound.

    python benchmarks/exp_random_k_default.py           # T=2000, 3 seeds (a few minutes)
    python benchmarks/exp_random_k_default.py --full    # T=4000, 5 seeds
"""

from __future__ import annotations

import _experiments as ex
import jax
import numpy as np

import snnplast as sp
from snnplast import diagnostics

METHODS = {
    "RandomK(4, scale=True)": lambda: sp.RandomK(4, scale=True),
    "RandomK(4, scale=False)": lambda: sp.RandomK(4, scale=False),
    "Diagonal": sp.Diagonal,
    "Exact": sp.Exact,
}


def main(argv=None):
    p = ex.parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--steps", type=int, default=None)
    args = p.parse_args(argv)
    steps = args.steps or (4000 if args.full else 2000)
    seeds = args.seeds or (5 if args.full else 3)
    shift = steps // 2
    xs, ys = ex.sine_shift(steps, shift)
    res = {m: {"post_shift_mse": [], "diverged": [], "cosine": [], "norm_ratio": [],
               "curve": []} for m in METHODS}
    probe = min(200, steps)
    for seed in ex.progress(range(seeds), "seeds"):
        key = jax.random.PRNGKey(seed)
        model = ex.elman(args.n, key)
        for name, make in METHODS.items():
            losses = ex.online_run(model, make(), xs, ys, key=jax.random.fold_in(key, 1))
            res[name]["post_shift_mse"].append(ex.post_shift_mse(losses, shift))
            res[name]["diverged"].append(bool(not np.all(np.isfinite(losses))))
            res[name]["curve"].append(losses.tolist())
            if name != "Exact":
                al = diagnostics.gradient_alignment(model, xs[:probe], ys[:probe], make(),
                                                    ex.mse, key=jax.random.fold_in(key, 2))
                res[name]["cosine"].append(float(np.nanmean(al.cosine[1:])))
                res[name]["norm_ratio"].append(float(np.nanmedian(al.norm_ratio[1:])))

    rows = []
    for name, r in res.items():
        rows.append([name, ex.fmt_sci(r["post_shift_mse"]),
                     f"{sum(r['diverged'])}/{seeds}",
                     ex.fmt_mean_sd(r["cosine"], digits=3) if r["cosine"] else "1 (reference)",
                     ex.fmt_mean_sd(r["norm_ratio"], digits=2) if r["norm_ratio"] else "1"])
    table = ex.markdown_table(
        ["method", "post-shift MSE (mean +- sd)", "diverged", "cosine with Exact (first 200 steps)",
         "median norm ratio to Exact"], rows)
    notes = (f"Elman RNN n={args.n} + linear readout, sine one step ahead, angular frequency "
             f"2pi/25 -> 2pi/12 at step {shift} of {steps}; OnlineLearner, Adam lr 3e-3, an update "
             f"every step; {seeds} seeds (seed s initialises the model and the selections). "
             "Post-shift MSE: mean per-step loss from the shift to the end. Cosine and norm ratio: "
             "per-step gradient of the method vs Exact's on the untrained model, averaged (median "
             "for the ratio) over steps 1-199.")
    fig, (ax,) = ex.figure(width=7)
    for name, r in res.items():
        curve = np.nanmean(np.asarray(r["curve"], dtype=float), axis=0)
        w = max(1, steps // 100)
        smooth = np.convolve(curve, np.ones(w) / w, mode="valid")
        ax.semilogy(np.arange(smooth.size) + w // 2, smooth, label=name)
    ax.axvline(shift, ls=":", c="k")
    ax.set_xlabel("step")
    ax.set_ylabel(f"MSE (mean over seeds, {w}-step average)")
    ax.legend(fontsize=7)
    ex.write_results("random_k_default" + ("_full" if args.full else ""), args.out,
                     command=ex.command_line(argv, __file__),
                     title="RandomK's default: scale=True vs scale=False", table=table,
                     notes=notes, figure=fig,
                     data={"n": args.n, "steps": steps, "shift": shift, "seeds": seeds,
                           "results": res})
    print(table)
    return res


if __name__ == "__main__":
    main()
