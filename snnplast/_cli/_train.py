"""``snnplast train``: train a model on a spiking data set and report accuracy, time and memory."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
from pathlib import Path

from ._paths import user_path


def _default(name: str):
    """TrainConfig's default for field `name`."""
    import dataclasses

    from ..train import TrainConfig

    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}[name]


# The augmentation of training batches (TrainConfig field, type, metavar, what it does).
AUGMENT_OPTIONS = (
    ("channel_shift", int, "K", "shift each training sample by up to K channels"),
    ("time_stretch", float, "S", "stretch each training sample's time axis by a factor in [1-S, 1+S]"),
    ("time_shift", int, "K", "move each training sample by up to K time bins"),
    ("spike_drop", float, "P", "remove each training spike with probability P"),
    ("blend", float, "P", "mix a training sample with another of its class with probability P"),
    ("time_mask", int, "K", "silence up to K consecutive time bins of each training sample"),
    ("channel_mask", int, "K", "silence up to K consecutive channels of each training sample"),
)


def add_run_options(p, *, lam_help: str, out_help: str) -> None:
    """The options `train` and `compare` share. Their defaults are TrainConfig's, so that the
    command line and the Python API start from the same run."""
    from ..train import MODELS, SCHEDULES

    p.add_argument(
        "--data",
        default=_default("data"),
        help="'speech' (spoken digits, made on first use), 'synth', 'shd', 'ssc', a folder of "
        "SHD or SSC files, one such .h5 file or its .h5.zip/.h5.gz download (a fifth of its "
        "speakers held out as the test split), or a folder of labelled recordings (default "
        "%(default)s)",
    )
    p.add_argument(
        "--labels", type=user_path, default=None, metavar="CSV",
        help="labels of a recordings folder: CSV with columns file,label[,speaker] (as "
        "'snnplast evaluate --labels' and 'snnplast data convert-audio --labels' read it)",
    )  # fmt: skip
    p.add_argument(
        "--model",
        default=_default("model"),
        metavar="MODEL",
        help=f"one of {', '.join(MODELS)} (listed below), or module:factory for your own: a "
        "function (n_in, hidden, *, key) -> Cell in an importable module or a .py file "
        "(default %(default)s)",
    )
    p.add_argument(
        "--hidden",
        type=int,
        default=_default("hidden"),
        help="hidden neurons (default %(default)s)",
    )
    p.add_argument(
        "--lam", type=float, default=_default("lam"), help=f"{lam_help} (default %(default)s)"
    )
    p.add_argument("--epochs", type=int, default=_default("epochs"), help="(default %(default)s)")
    p.add_argument(
        "--batch",
        type=int,
        default=_default("batch"),
        help="samples per step (default %(default)s)",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=_default("lr"),
        help="Adam learning rate, the peak (default %(default)s)",
    )
    p.add_argument(
        "--schedule",
        default=_default("schedule"),
        help=f"learning rate over the run: {', '.join(SCHEDULES)} (default %(default)s)",
    )
    for name, kind, metavar, text in AUGMENT_OPTIONS:
        p.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=_default(name),
            metavar=metavar,
            help=f"augment: {text}, 0 for none (default %(default)s)",
        )
    p.add_argument("--seed", type=int, default=_default("seed"), help="(default %(default)s)")
    p.add_argument(
        "--bins",
        type=int,
        default=_default("n_bins"),
        help="time bins per sample (default %(default)s)",
    )
    p.add_argument(
        "--pool",
        type=int,
        default=_default("pool"),
        help="adjacent input channels summed into one (must divide the data's channels; "
        "default %(default)s: SHD's 700 as 140)",
    )
    p.add_argument(
        "--time-axis",
        default=_default("time_axis"),
        help="what the bins span: 'absolute' (the first 1.4 s of every sample) or 'word' (each "
        "sample's word, found from its spike rate, stretched over the bins; evaluate bins other "
        "data the same way) (default %(default)s)",
    )
    p.add_argument(
        "--block",
        type=int,
        default=_default("block"),
        metavar="K",
        help="online methods with a per-unit trace: accumulate traces K steps at a time, "
        "1 for step by step (same gradient; default: blocks only where a trace is stored per "
        "synapse, the whole sequence or 32 steps; snnplast inspect says which)",
    )
    p.add_argument(
        "--on-nan",
        default=_default("on_nan"),
        help="a batch with a NaN or Inf loss or gradient: 'stop' the run (the last good "
        "checkpoint is kept) or 'skip' the batch, counted in summary.json (default %(default)s)",
    )
    p.add_argument("--out", default=None, type=user_path, help=out_help)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that a text with line breaks (a table) keeps its lines."""

    def _fill_text(self, text, width, indent):
        if "\n" in text:
            return "".join(indent + line + "\n" for line in text.splitlines())
        return super()._fill_text(text, width, indent)


def registry_epilog() -> str:
    """The methods and models with their help lines, from their registries, for ``--help``."""
    from ..train import MODELS, method_help

    def table(title, rows):
        width = max(len(name) for name, _ in rows)
        return [f"{title}:"] + [f"  {name:<{width}}  {text}" for name, text in rows]

    models = [(name, entry.help) for name, entry in MODELS.items()]
    own = "your own: factory(n_in, hidden, *, key) -> Cell, completed with the LI readout"
    models.append(("module:factory", own))
    return "\n".join(table("methods", method_help()) + [""] + table("models", models))


def register(subparsers) -> None:
    from ..train import method_usages

    p = subparsers.add_parser(
        "train",
        help="train a network and report accuracy, time and memory",
        description="Train a hidden layer under a leaky-integrator readout with a per-step "
        "cross-entropy loss. Writes metrics.jsonl, summary.json, model.eqx and model.json. "
        "With no options: an adaptive LIF network with recurrent weights learns the spoken "
        "digits by BPTT (about 6 minutes on 2 CPU cores, the first time included).",
        epilog=registry_epilog(),
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--method",
        default=_default("method"),
        help=f"gradient method: {', '.join(method_usages())} (listed below; default "
        "%(default)s)",
    )
    add_run_options(
        p,
        lam_help="factor on an online trace's carried part",
        out_help="output folder (default runs/<model>-<method>-<time>)",
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue the interrupted run in RUN_DIR with its own settings, exactly where its "
        "last checkpoint left it (a finished run is reported and left alone)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="also checkpoint every N optimiser steps (default: at the end of every epoch)",
    )
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        metavar="N",
        help="split each batch over N devices, parameters replicated (default: all; the batch "
        "must be a multiple of N); across hosts see the README",
    )
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard event files into the output folder (needs tensorboardX: "
        "pip install 'snnplast[tensorboard]')",
    )
    p.set_defaults(func=run)


def _pct(a) -> str:
    return "n/a" if a is None else f"{100 * a:.1f}%"


def _slug(text: str) -> str:
    # 'mycells:qif' or 'random-k:4' as part of a folder name: no colons or slashes.
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def _data_source(data) -> str | None:
    """`--data` (or `--labels`) as the run records it: a folder or file as an absolute path, so
    that ``--resume`` from another working folder finds the same data; a name as it is."""
    from ..data import DATA_NAMES

    if data is None:
        return None
    text = str(data)
    # An empty --data stays empty, for TrainConfig to refuse (Path reads it as the folder '.').
    if text in DATA_NAMES or not text.strip() or not Path(text).expanduser().exists():
        return text
    return str(Path(text).expanduser().resolve())


def config_from_args(args: argparse.Namespace, method: str):
    """The run's TrainConfig from the options `train` and `compare` share; it checks every
    argument, before minutes of data loading can start."""
    from ..train import TrainConfig

    return TrainConfig(
        model=args.model,
        hidden=args.hidden,
        method=method,
        lam=args.lam,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        schedule=args.schedule,
        seed=args.seed,
        data=_data_source(args.data),
        labels=_data_source(args.labels),
        n_bins=args.bins,
        time_axis=args.time_axis,
        pool=args.pool,
        block=getattr(args, "block", None),
        on_nan=getattr(args, "on_nan", _default("on_nan")),
        **{name: getattr(args, name) for name, *_ in AUGMENT_OPTIONS},
    )


def _resume_config(args: argparse.Namespace):
    """The config of the run to continue, read from its checkpoint; no other run option may be
    given with ``--resume`` (the run continues with its own)."""
    from ..train import TrainConfig, run_status

    header = run_status(args.resume)
    names = {"data": "data", "model": "model", "hidden": "hidden", "lam": "lam",
             "epochs": "epochs", "batch": "batch", "lr": "lr", "schedule": "schedule",
             "seed": "seed", "labels": "labels",
             "bins": "n_bins", "time_axis": "time_axis", "pool": "pool",
             "method": "method", "on_nan": "on_nan", "out": None,
             **{name: name for name, *_ in AUGMENT_OPTIONS}}  # fmt: skip
    for option, field in names.items():
        default = None if field is None else _default(field)
        if getattr(args, option) != default:
            flag = "--" + option.replace("_", "-")
            raise ValueError(
                f"{flag} cannot be combined with --resume: the run continues with its own "
                f"settings (from {args.resume})"
            )
    return TrainConfig.from_dict(header["config"]), header


def check_out(out: Path) -> None:
    """`--out` of a fresh run: a folder (or nothing yet), not an unfinished run to replace."""
    from ..train import CHECKPOINT_FILE, CheckpointError, run_status

    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    if (out / CHECKPOINT_FILE).is_file():
        try:
            status = run_status(out)
        except CheckpointError:
            return
        if not status["complete"]:
            state = status["state"]
            raise ValueError(
                f"--out {out} holds an unfinished run (epoch {state['epoch']}, step "
                f"{state['step']} of {status['config']['epochs']} epochs); continue it with "
                f"--resume {out}, or choose another --out"
            )


def run(args: argparse.Namespace) -> int:
    from ..data import check_data_source, load_dataset
    from ..train import (
        DataParallel,
        TensorBoardSink,
        fit,
        format_bytes,
        initialize_distributed,
    )

    # Every value is checked here, before data is generated or read and before a folder is
    # made: a typo costs a second, not the minutes of making the default data set.
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise ValueError(f"--checkpoint-every must be >= 1, got {args.checkpoint_every}")
    if args.resume is not None:
        config, header = _resume_config(args)
        out = Path(args.resume).expanduser()
        if header["complete"]:
            print(
                f"{out} is already complete ({config.epochs} of {config.epochs} epochs); "
                "nothing to resume"
            )
            return 0
    else:
        config = config_from_args(args, args.method)
        out = Path(args.out or f"runs/{_slug(config.model)}-{_slug(config.method)}-"
                   f"{time.strftime('%Y%m%d-%H%M%S')}").expanduser()
        check_out(out)
    initialize_distributed()
    DataParallel(args.devices).check_batch(config.batch, "--batch")
    progress = not args.no_progress
    check_data_source(config.data, progress=progress, labels=config.labels)
    if args.tensorboard:
        # Checked before minutes of data loading; the writer itself is opened with the run.
        TensorBoardSink.check_available()
    # The validation speakers stay fixed across seeds: the seed varies weights and order only.
    dataset = load_dataset(
        config.data, n_bins=config.n_bins, pool=config.pool, time_axis=config.time_axis,
        progress=progress, labels=config.labels,
    )  # fmt: skip
    sinks = [TensorBoardSink(out)] if args.tensorboard else []
    try:
        summary = fit(
            config, dataset, out, progress=progress, resume=args.resume is not None,
            checkpoint_every=args.checkpoint_every, devices=args.devices, sinks=sinks,
        )  # fmt: skip
    except FloatingPointError as e:
        print(f"snnplast train: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C is how a run is stopped: say how to go on, not where Python was.
        from ..train import CHECKPOINT_FILE

        go_on = (
            f"; continue it with: snnplast train --resume {shlex.quote(str(out))}"
            if (out / CHECKPOINT_FILE).is_file()
            else " before its first checkpoint"
        )
        print(f"\nsnnplast train: interrupted{go_on}", file=sys.stderr)
        return 130
    finally:
        for sink in sinks:
            sink.close()
    d = summary["dataset"]
    if summary["batch_used"] != config.batch:
        # Said, not silent: the run's steps are not what --batch asked for.
        print(f"--batch {config.batch} is more than the {d['n_train']} training samples: each "
              f"step took all {summary['batch_used']}")  # fmt: skip
    rows = [
        ("val accuracy", _pct(summary["val_accuracy"])),
        ("test accuracy", _pct(summary["test_accuracy"])),
        (
            "best val (epoch)",
            (
                f"{_pct(summary['best_val_accuracy'])} ({summary['best_epoch']}), "
                f"test there {_pct(summary['test_accuracy_at_best_val'])}"
            ),
        ),
        (
            "time / epoch",
            (
                f"{summary['seconds_per_epoch']:.2f} s (compile "
                f"{summary['compile_seconds']:.1f} s, total {summary['wall_seconds']:.1f} s)"
            ),
        ),
        (
            "peak memory",
            (
                f"{format_bytes(summary['peak_memory_bytes'])} (train step scratch "
                f"{format_bytes(summary['step_temp_bytes'])})"
            ),
        ),
    ]
    print(
        f"{config.model} / {config.method}, hidden {config.hidden}, {config.epochs} epochs on "
        f"{config.data} ({d['n_train']} train / {d['n_val']} val / {d['n_test']} test, "
        f"{d['n_classes']} classes)"
    )
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(f"files in {out}/: {', '.join(summary['files'])}")
    return 0
