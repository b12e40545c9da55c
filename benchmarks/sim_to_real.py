"""Sim-to-real: train on synthetic spoken digits, test on real people's recordings.

Each variant of the recording chain (``snnplast.data.Acoustics``) makes its own synthetic set,
a network is trained on it, and the trained run is evaluated on a folder of real recordings of
the English digits (``DIGIT_SPEAKER_TAKE.wav``, such as the Free Spoken Digit Dataset) converted
as they come, at their own sample rate. The real recordings are a validation set: nothing is
tuned on individual takes.

    python benchmarks/sim_to_real.py --real /path/to/real-digits                # the ablation
    python benchmarks/sim_to_real.py --real DIR --variants recorded --per-class 100 --epochs 100

Runs made by the command line (``snnplast train ...`` then ``snnplast evaluate RUN --data
DIR``) are tabled with ``--collect RUN [RUN ...]``: one row per run, read from its
``summary.json`` and ``evaluate-<folder>/evaluation.json``, appended to ``--results`` and
printed as a markdown table.

Without the folder of real recordings the script says so and exits (status 0): it is not part
of the package. Results are appended to ``--results`` (JSON lines) as each run finishes.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import re
import sys
import time
from pathlib import Path

from snnplast.data import CLEAN, RECORDED, load_dataset, make_speech_shd
from snnplast.train import TrainConfig, fit
from snnplast.train._evaluate import evaluate

# The project's development set sits beside the repository (``../shared/data/real-digits``).
DEFAULT_REAL = Path(
    os.environ.get("SNNPLAST_REAL_DIGITS")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-digits"
)
_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")

# Leave-one-out from the full chain, and the dry speech of the previous default.
VARIANTS = {
    "clean": CLEAN,
    "recorded": RECORDED,
    "no-channel": dataclasses.replace(RECORDED, channels=(1.0, 0.0, 0.0)),
    "no-noise": dataclasses.replace(RECORDED, p_noise=0.0),
    "no-room": dataclasses.replace(RECORDED, p_room=0.0),
    "no-colour": dataclasses.replace(RECORDED, p_colour=0.0),
    "no-speed": dataclasses.replace(RECORDED, speed=(1.0, 1.0)),
    "channel-only": dataclasses.replace(CLEAN, channels=RECORDED.channels),
}


def real_labels(folder: Path, out: Path, takes: int | None) -> tuple[Path, Path, dict]:
    """A folder of links to the recordings (the first `takes` takes of each digit and speaker,
    or all) and a labels CSV for it; speakers are numbered in order of their names."""
    files = sorted(p for p in folder.iterdir() if _NAME.match(p.stem) and p.suffix == ".wav")
    names = sorted({_NAME.match(p.stem)[2] for p in files})
    speakers = {name: i for i, name in enumerate(names)}
    links = out / "wav"
    links.mkdir(parents=True, exist_ok=True)
    table = out / "labels.csv"
    with open(table, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["file", "label", "speaker"])
        for p in files:
            digit, name, take = _NAME.match(p.stem).groups()
            if takes is not None and int(take) >= takes:
                continue
            if not (links / p.name).exists():
                os.symlink(p, links / p.name)
            writer.writerow([p.name, digit, speakers[name]])
    return links, table, {str(i): name for name, i in speakers.items()}


# The training options a collected row names (those not at their defaults).
_OPTIONS = ("epochs", "method", "model", "hidden", "n_bins", "time_axis", "pool",
            "channel_shift", "time_stretch", "time_shift", "spike_drop", "blend",
            "time_mask", "channel_mask",
            "seed", "data")  # fmt: skip


def collect_row(run: Path, real_folder: str) -> dict:
    """One table row from a command-line run and its evaluation on the folder `real_folder`."""
    summary = json.loads((run / "summary.json").read_text())
    real = json.loads((run / f"evaluate-{real_folder}" / "evaluation.json").read_text())
    config = summary["config"]
    defaults = TrainConfig()
    return {
        "run": str(run),
        "options": {k: config[k] for k in _OPTIONS if config.get(k, getattr(defaults, k)) != getattr(defaults, k)},
        "seed": config["seed"], "epochs": config["epochs"], "method": config["method"],
        "synthetic_test": summary["test_accuracy"],
        "real_n": real["n"], "real": real["accuracy"],
        "real_present_classes": real["accuracy_present_classes"],
        "real_per_speaker": {k: v["accuracy"] for k, v in real["per_speaker"].items()},
        # The run's other evaluations (such as held-out speakers of another voice source).
        "other_evaluations": {
            path.parent.name.removeprefix("evaluate-"): json.loads(path.read_text())["accuracy"]
            for path in sorted(run.glob("evaluate-*/evaluation.json"))
            if path.parent.name != f"evaluate-{real_folder}"
        },
    }  # fmt: skip


def collect(runs: list[Path], real_folder: str, results: Path) -> None:
    rows = [collect_row(run, real_folder) for run in runs]
    results.parent.mkdir(parents=True, exist_ok=True)
    with open(results, "a") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    speakers = sorted({name for row in rows for name in row["real_per_speaker"]})
    print("| run | options | seed | held-out synthetic | real | real, 10 digits | "
          + " | ".join(speakers) + " |")  # fmt: skip
    print("|---|---|--:|--:|--:|--:|" + "--:|" * len(speakers))
    for row in rows:
        options = " ".join(f"{k}={v}" for k, v in row["options"].items() if k != "seed") or "defaults"
        cells = [f"{row['real_per_speaker'].get(name, float('nan')):.1%}" for name in speakers]
        print(f"| {Path(row['run']).name} | {options} | {row['seed']} | {row['synthetic_test']:.1%} "
              f"| {row['real']:.1%} | {row['real_present_classes']:.1%} | " + " | ".join(cells) + " |")  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--real", type=Path, default=DEFAULT_REAL, help="folder of real recordings")
    p.add_argument("--takes", type=int, default=None, help="first N takes per digit and speaker")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"of {', '.join(VARIANTS)}")
    p.add_argument("--per-class", type=int, default=50)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seeds", default="0")
    p.add_argument("--method", default="bptt")
    p.add_argument("--work", type=Path, default=Path("runs/sim_to_real"))
    p.add_argument("--results", type=Path, default=Path("runs/sim_to_real/results.jsonl"))
    p.add_argument("--collect", type=Path, nargs="+", metavar="RUN",
                   help="table command-line runs evaluated on --real instead of training")  # fmt: skip
    args = p.parse_args(argv)
    if args.collect:
        collect(args.collect, args.real.name, args.results)
        return 0
    if not args.real.is_dir():
        print(f"sim_to_real: skipped: no real recordings at {args.real} (pass --real DIR)")
        return 0
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    wav, table, speaker_names = real_labels(args.real, args.work / f"real-{args.takes}", args.takes)
    for name in variants:
        started = time.perf_counter()
        data_dir = args.work / f"data-{name}-n{args.per_class}"
        make_speech_shd(data_dir, per_class=args.per_class, acoustics=VARIANTS[name])
        made = time.perf_counter() - started
        dataset = load_dataset(data_dir)
        for seed in [int(s) for s in args.seeds.split(",")]:
            run = args.work / f"run-{name}-n{args.per_class}-e{args.epochs}-{args.method}-s{seed}"
            config = TrainConfig(epochs=args.epochs, seed=seed, method=args.method,
                                 data=str(data_dir))  # fmt: skip
            summary = fit(config, dataset, run, progress=False)
            real = evaluate(run, wav, labels=table, progress=True)
            row = {
                "variant": name, "per_class": args.per_class, "epochs": args.epochs,
                "method": args.method, "seed": seed, "takes": args.takes,
                "synthetic_test": summary["test_accuracy"],
                "real": real["accuracy"],
                "real_present_classes": real["accuracy_present_classes"],
                "real_per_speaker": {speaker_names[k]: v["accuracy"]
                                     for k, v in real["per_speaker"].items()},
                "make_seconds": round(made, 1), "run": str(run),
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            with open(args.results, "a") as f:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
