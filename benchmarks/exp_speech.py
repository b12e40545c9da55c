"""Experiment 8: spoken digits, online methods against BPTT, several seeds.

Runs ``snnplast compare`` once per seed (same data, network, epochs and learning rate for every
method; the seed sets the initial weights and the batch order) and gathers, per method, the test
accuracy (held-out speakers) as mean +- sd over seeds, its gap to BPTT, and the cosine of the
first-step gradient with BPTT's, per parameter array (from each ``compare.json``).

``--full`` is the issue's comparison: the default data (``speech``, made on first use), the
default network of ``snnplast compare`` (recurrent ALIF, 256 hidden) trained for its default 100
epochs, methods ``bptt,diagonal,immediate,random-k:4``, 3 seeds. On 2 shared CPU cores that is
many hours (RandomK keeps a dense trace: 6 GiB for a batch of 32 at 256 hidden), so the default
is CPU-sized: the same data and network, methods ``bptt,diagonal,immediate``, 20 epochs (the
cosine schedule spans whatever ``--epochs`` is, the same for every method). RandomK runs
apart, on a smaller hidden size where its dense trace fits in time, beside BPTT and e-prop at
that size (``--methods bptt,diagonal,random-k:4 --hidden 16 --epochs 10``: ~95 s per RandomK
epoch here, ~55 min for 3 seeds). ``--hidden``, ``--epochs``, ``--data`` and
``--methods`` override either setting; every other option of ``snnplast compare`` can follow
``--``. The result files are named by data, hidden size and epochs, so runs at different sizes
sit side by side.

    python benchmarks/exp_speech.py                                  # CPU-sized: 20 epochs
    python benchmarks/exp_speech.py --methods bptt,diagonal,random-k:4 --hidden 16 --epochs 10
    python benchmarks/exp_speech.py --full                           # the issue's comparison
    python benchmarks/exp_speech.py --data synth --epochs 2 --hidden 32 --seeds 2   # a quick try
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import _experiments as ex
import numpy as np

from snnplast.train import TrainConfig

# The setting is compare's default; the CPU-sized one: 20 epochs x 3 methods x 3 seeds is
# about 45 minutes on 2 shared cores at ~13 s per epoch and method (measured, loaded machine).
FULL_EPOCHS = TrainConfig().epochs
CPU_EPOCHS = 20
PAPER = "online e-prop 77-83% on real SHD, close to BPTT (vertex-elimination paper)"


def main(argv=None):
    p = ex.parser(__doc__.splitlines()[0])
    p.add_argument("--methods", default=None,
                   help="default bptt,diagonal,immediate (--full: and random-k:4)")
    p.add_argument("--data", default="speech")
    p.add_argument("--hidden", type=int, default=None, help=f"default {TrainConfig().hidden}")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"default {CPU_EPOCHS} (--full: {FULL_EPOCHS})")
    p.add_argument("--runs", type=Path, default=ex.ROOT / "runs" / "exp_speech",
                   help="folder for the compare runs (not committed)")
    p.add_argument("--gather", action="store_true",
                   help="train nothing: gather the tables from the runs already in --runs")
    p.add_argument("--cosines-only", action="store_true",
                   help="train nothing: each method's first-step gradient cosine with BPTT, per "
                        "parameter array and seed (for a method too slow to train on a CPU)")
    p.add_argument("extra", nargs="*", help="more options for snnplast compare, after --")
    args = p.parse_args(argv)
    seeds = args.seeds or 3
    methods_arg = args.methods or ("bptt,diagonal,immediate,random-k:4" if args.full
                                   else "bptt,diagonal,immediate")
    methods = [m.strip() for m in methods_arg.split(",")]
    epochs = args.epochs or (FULL_EPOCHS if args.full else CPU_EPOCHS)
    name = f"speech_{args.data}_h{args.hidden or TrainConfig().hidden}_e{epochs}"
    if args.cosines_only:
        return cosines_only(args, methods, seeds, argv)
    reports = []
    made_by = args.runs / name / "made_by.json"  # the training command, for --gather's notes
    if not args.gather:
        made_by.parent.mkdir(parents=True, exist_ok=True)
        made_by.write_text(json.dumps({"command": ex.command_line(argv, __file__),
                                       "commit": ex._COMMIT}))
    for seed in ex.progress(range(seeds), "seeds"):
        out = args.runs / name / f"seed{seed}"
        if args.gather:
            reports.append(json.loads((out / "compare.json").read_text()))
            continue
        if out.exists():
            shutil.rmtree(out)
        # The console script's entry point, run by this interpreter (the same snnplast).
        cmd = [sys.executable, "-c",
               ("import sys; from snnplast._cli import main; sys.exit(main())"), "compare", "--methods", methods_arg,
               "--data", args.data, "--seed", str(seed), "--out", str(out), "--no-progress"]
        if args.hidden:
            cmd += ["--hidden", str(args.hidden)]
        cmd += ["--epochs", str(epochs)]
        subprocess.run(cmd + list(args.extra), check=True, cwd=ex.ROOT)
        reports.append(json.loads((out / "compare.json").read_text()))

    def runs_of(method):
        return [next(r for r in rep["runs"] if r["method"] == method) for rep in reports]

    acc = {m: [r.get("test_accuracy") for r in runs_of(m)] for m in methods}
    acc = {m: [np.nan if a is None else a for a in v] for m, v in acc.items()}
    bptt = np.asarray(acc.get("bptt", [np.nan] * seeds), dtype=float)
    rows = []
    for m in methods:
        gap = np.asarray(acc[m], dtype=float) - bptt
        per = runs_of(m)
        names = list(per[0].get("cosine_by_parameter") or {})
        cos = "; ".join(
            f"{n} {np.mean([r['cosine_by_parameter'][n] or np.nan for r in per]):.3f}"
            for n in names)
        rows.append([m, ex.fmt_mean_sd(acc[m], 100, unit="%"),
                     "" if m == "bptt" else ex.fmt_mean_sd(gap, 100, unit=" pts"),
                     f"{np.mean([r.get('cosine') or np.nan for r in per]):.3f}", cos])
    table = ex.markdown_table(["method", "test accuracy", "gap to BPTT",
                               "first-step gradient cosine with BPTT",
                               "cosine per parameter array (seed mean)"], rows)
    cfg, ds = reports[0]["config"], reports[0]["dataset"]
    runs = args.runs.resolve()
    runs = runs.relative_to(ex.ROOT) if runs.is_relative_to(ex.ROOT) else runs
    notes = (f"{seeds} seeds of `snnplast compare` on data {args.data!r} ({ds.get('n_train')} "
             f"train / {ds.get('n_val')} validation / {ds.get('n_test')} test samples, the test "
             f"speakers held out; {ds.get('n_classes')} classes, {ds.get('n_channels')} "
             "channels); test accuracy after the last epoch. Shared config: "
             + ", ".join(f"{k}={v}" for k, v in cfg.items() if k not in ("method", "seed"))
             + f". Each run's folder: {runs}/{name}/seed<s>/. Gradient cosines: at the initial "
             "weights of each seed, on the first training batch. Paper: " + PAPER + ".")
    if args.gather:
        made = json.loads(made_by.read_text()) if made_by.exists() else {}
        notes += (" Gathered from runs trained by `" + made.get("command", "(not recorded)")
                  + "` at commit " + made.get("commit", "(not recorded)") + ".")
    fig, (ax,) = ex.figure()
    ms = [ex.mean_sd(acc[m]) for m in methods]
    ax.bar(methods, [100 * v[0] for v in ms], yerr=[100 * v[1] for v in ms], capsize=4)
    ax.set_ylabel("test accuracy (%)")
    ex.write_results(name, args.out, command=ex.command_line(argv, __file__),
                     title=f"Spoken digits ({args.data}): online methods vs BPTT", table=table,
                     notes=notes, figure=fig,
                     data={"seeds": seeds, "methods": methods, "test_accuracy": acc,
                           "compare": [{"runs": r["runs"], "config": r["config"],
                                        "dataset": r["dataset"]} for r in reports]})
    print(table)
    return acc


def cosines_only(args, methods, seeds, argv):
    """The first-step gradient's cosine with BPTT's per method and parameter array, per seed
    (``snnplast.train.gradient_agreement``: the seed's initial weights, its first batch)."""
    from snnplast.data import load_dataset
    from snnplast.train import gradient_agreement

    config = TrainConfig(data=args.data)
    if args.hidden:
        config = dataclasses.replace(config, hidden=args.hidden)
    data = load_dataset(args.data, n_bins=config.n_bins)
    per_seed = []
    for seed in ex.progress(range(seeds), "seeds"):
        cfg = dataclasses.replace(config, seed=seed)
        per_seed.append(gradient_agreement(cfg, data, [m for m in methods if m != "bptt"]))
    names = list(per_seed[0]["bptt"]["cosine_by_parameter"])
    rows = []
    for m in per_seed[0]:
        rows.append([m, ex.fmt_mean_sd([r[m]["cosine"] for r in per_seed], digits=3),
                     *(ex.fmt_mean_sd(
            [r[m]["cosine_by_parameter"][n] for r in per_seed], digits=3) for n in names),
            ex.fmt_mean_sd([r[m]["norm_ratio"] for r in per_seed], digits=3)])
    table = ex.markdown_table(["method", "cosine with BPTT (all)", *[f"`{n}`" for n in names],
                               "norm / BPTT's"], rows)
    notes = (f"First-step gradients of `snnplast compare`'s network ({config.model}, "
             f"{config.hidden} hidden) on data {args.data!r}, {seeds} seeds (mean +- sd): each "
             "seed's initial weights and the first batch `fit` trains on. No training.")
    fig, (ax,) = ex.figure()
    ax.bar(list(per_seed[0]), [ex.mean_sd([r[m]["cosine"] for r in per_seed])[0]
                                for m in per_seed[0]])
    ax.set_ylabel("cosine with BPTT")
    ex.write_results(f"speech_{args.data}_h{config.hidden}_cosines", args.out,
                     command=ex.command_line(argv, __file__),
                     title=f"Spoken digits ({args.data}): gradient cosine with BPTT, "
                           f"{config.hidden} hidden", table=table, notes=notes, figure=fig,
                     data={"seeds": seeds, "methods": methods, "per_seed": per_seed})
    print(table)
    return per_seed


if __name__ == "__main__":
    main()
