"""Experiment 9: ``snnplast.diagnostics`` on the frequency-shift task (the sparse-RTRL paper's
figures 4 and 5): gradient cosine of RandomK(k) with exact RTRL before and after the shift, and
the conditioning of the recurrent Jacobian and of the influence matrix.

Per seed: an Elman RNN (n=64, linear readout) learns the pre-shift sine online with
``RandomK(4)`` (Adam 3e-3, an update every step) up to the shift. On that model:

- ``gradient_alignment``: per-step cosine between RandomK(k)'s gradient and Exact's, over the
  ``W`` steps before the shift (old frequency) and the ``W`` steps after it (new frequency), each
  window run from the zero state (its first 20 steps are left out of the means);
- ``jacobian_spectrum``: condition number of ``H_t = d h_t / d h_{t-1}`` (64 x 64) at each step of
  the pre-shift window (median reported);
- ``influence_spectrum``: singular values and condition number of the exact influence matrix
  ``d h_T / d W_rec`` (64 x 4096; the paper's "Jacobian tensor reshaped to n x n^2") at the end
  of the pre-shift window.

    python benchmarks/exp_diagnostics.py          # T=2000 (shift 1000), W=200, 3 seeds, k in {1, 4, 16}
    python benchmarks/exp_diagnostics.py --full   # 5 seeds, W=500
"""

from __future__ import annotations

import _experiments as ex
import jax
import numpy as np
import optax

import snnplast as sp
from snnplast import diagnostics

SKIP = 20


def main(argv=None):
    p = ex.parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--window", type=int, default=None)
    p.add_argument("--ks", default="1,4,16")
    args = p.parse_args(argv)
    seeds = args.seeds or (5 if args.full else 3)
    w = args.window or (500 if args.full else 200)
    shift = args.steps // 2
    ks = [int(k) for k in args.ks.split(",")]
    xs, ys = ex.sine_shift(args.steps, shift)
    pre = (xs[shift - w:shift], ys[shift - w:shift])
    post = (xs[shift:shift + w], ys[shift:shift + w])
    out = {"cos_pre": {k: [] for k in ks}, "cos_post": {k: [] for k in ks},
           "curves_pre": {k: [] for k in ks}, "curves_post": {k: [] for k in ks},
           "h_condition_median": [], "h_norm_median": [], "influence_condition": [],
           "influence_sv": []}
    learner = sp.OnlineLearner(sp.RandomK(4), ex.mse, optax.adam(3e-3))
    for seed in ex.progress(range(seeds), "seeds"):
        key = jax.random.PRNGKey(seed)
        model = ex.elman(args.n, key)
        state = learner.init(model, xs[0], key=key)
        model, _, _ = learner.update(model, state, xs[:shift], ys[:shift], key=key)
        for k in ks:
            for name, (x, y) in (("pre", pre), ("post", post)):
                al = diagnostics.gradient_alignment(model, x, y, sp.RandomK(k), ex.mse,
                                                    key=jax.random.fold_in(key, k))
                out[f"cos_{name}"][k].append(float(np.nanmean(al.cosine[SKIP:])))
                out[f"curves_{name}"][k].append(al.cosine.tolist())
        spec = diagnostics.jacobian_spectrum(model.layers[0], pre[0])
        out["h_condition_median"].append(float(np.median(spec.condition[SKIP:])))
        out["h_norm_median"].append(float(np.median(spec.singular_values[SKIP:, 0])))
        inf = diagnostics.influence_spectrum(model.layers[0], pre[0], where=lambda m: m.w_rec)
        out["influence_condition"].append(float(inf.condition))
        out["influence_sv"].append(np.asarray(inf.singular_values).tolist())

    rows = [[f"cosine RandomK({k}) vs Exact, before the shift",
             ex.fmt_mean_sd(out["cos_pre"][k], digits=3), "~0.92" if k == 4 else ""]
            for k in ks]
    rows += [[f"cosine RandomK({k}) vs Exact, after the shift",
              ex.fmt_mean_sd(out["cos_post"][k], digits=3),
              "~0.82; rises with k" if k == 4 else "rises with k"] for k in ks]
    rows += [["condition number of d h_T / d W_rec (n x n^2)",
              ex.fmt_mean_sd(out["influence_condition"], digits=3), "2.6-6.5"],
             ["condition number of H_t (median over steps)",
              ex.fmt_mean_sd(out["h_condition_median"], digits=3), ""],
             ["largest singular value of H_t (median over steps)",
              ex.fmt_mean_sd(out["h_norm_median"], digits=3), ""]]
    table = ex.markdown_table(["quantity", f"ours (mean +- sd, {seeds} seeds)", "paper"], rows)
    notes = (f"Elman RNN n={args.n} + linear readout trained online with RandomK(4), Adam 3e-3, "
             f"on the sine 2pi/25 for {shift} steps; diagnostics on the model at the shift over "
             f"windows of {w} steps before (2pi/25) and after (2pi/12) it, each from the zero "
             f"state; the first {SKIP} steps of a window are left out of the means.")
    fig, (a1, a2) = ex.figure(2)
    for k in ks:
        c = np.concatenate([np.nanmean(np.asarray(out["curves_pre"][k], float), axis=0),
                            np.nanmean(np.asarray(out["curves_post"][k], float), axis=0)])
        sm = np.convolve(np.nan_to_num(c), np.ones(10) / 10, mode="valid")
        a1.plot(np.arange(sm.size) + shift - w + 5, sm, label=f"k={k}")
    a1.axvline(shift, ls=":", c="k")
    a1.set_xlabel("step (each window from the zero state)")
    a1.set_ylabel("cosine with Exact (10-step mean)")
    a1.legend(fontsize=7)
    for s, sv in enumerate(out["influence_sv"]):
        a2.semilogy(np.arange(1, len(sv) + 1), sv, label=f"seed {s}")
    a2.set_xlabel("index")
    a2.set_ylabel("singular value of d h / d W_rec")
    a2.legend(fontsize=7)
    ex.write_results("diagnostics", args.out, command=ex.command_line(argv, __file__),
                     title="Diagnostics: gradient alignment and Jacobian conditioning",
                     table=table, notes=notes, figure=fig,
                     data={"n": args.n, "steps": args.steps, "window": w, "seeds": seeds,
                           **{k: ({str(kk): vv for kk, vv in v.items()} if isinstance(v, dict)
                                  else v) for k, v in out.items()}})
    print(table)
    return out


if __name__ == "__main__":
    main()
