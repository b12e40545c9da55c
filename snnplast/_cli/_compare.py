"""``snnplast compare``: train several gradient methods under one budget and compare them."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from ._train import AUGMENT_OPTIONS, HelpFormatter, add_run_options, registry_epilog


def register(subparsers) -> None:
    from ..train import method_usages

    p = subparsers.add_parser(
        "compare",
        help="train several gradient methods with the same budget and compare them",
        description="Train the same network with each method (same seed, data, epochs, batch and "
        "learning rate), one sub-folder per method, and write compare.md (a table: accuracy, "
        "time, memory, first-step gradient cosine with BPTT), compare.json and compare.png. "
        "On the defaults, bptt,diagonal,immediate takes about 35 minutes on 2 CPU cores; "
        "--data synth is a quick first try.",
        epilog=registry_epilog(),
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--methods",
        required=True,
        help=f"comma-separated gradient methods, e.g. bptt,diagonal,immediate; each one of "
        f"{', '.join(method_usages())} (listed below)",
    )
    add_run_options(
        p,
        lam_help="factor on an online trace's carried part (online methods; bptt uses 1.0)",
        out_help="output folder (default runs/compare-<time>)",
    )
    p.set_defaults(func=run)


def _command(args: argparse.Namespace, out: Path) -> str:
    """The command line that reproduces the run: as typed when this process was started by it,
    otherwise rebuilt with every setting explicit."""
    if sys.argv[1:2] == ["compare"]:
        return shlex.join(["snnplast", *sys.argv[1:]])
    words = ["snnplast", "compare", "--methods", args.methods, "--data", str(args.data)]
    options = ["model", "hidden", "lam", "epochs", "batch", "lr", "schedule", "seed", "bins",
               "time_axis", "pool"]  # fmt: skip
    options += [name for name, *_ in AUGMENT_OPTIONS]
    for name in options:
        words += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    words += ["--out", str(out)] + (["--no-progress"] if args.no_progress else [])
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..train import compare, parse_methods
    from ._train import check_out, config_from_args

    # Every method and setting is checked before minutes of data loading can start.
    methods = parse_methods(args.methods, args.lam)
    # The shared config carries lam for the online methods; with only bptt it must be 1.0.
    online = [m for m in methods if m != "bptt"]
    config = config_from_args(args, online[0] if online else "bptt")
    for method in online[1:]:
        config_from_args(args, method)  # each method against the network (random-k's k)
    out = Path(args.out or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}").expanduser()
    check_out(out)
    progress = not args.no_progress
    dataset = load_dataset(
        args.data, n_bins=args.bins, pool=args.pool, time_axis=args.time_axis, progress=progress,
        labels=args.labels,
    )  # fmt: skip
    report = compare(methods, config, dataset, out, progress=progress, command=_command(args, out))
    compare_md = out / next(name for name in report["files"] if name.endswith(".md"))
    print(compare_md.read_text(), end="")
    print(f"files in {out}/: {', '.join(report['files'])} and one folder per method")
    failed = [r["method"] for r in report["runs"] if r["error"]]
    if failed:
        print(
            f"snnplast compare: error: training diverged for {', '.join(failed)} "
            f"(reported in {compare_md})",
            file=sys.stderr,
        )
        return 1
    return 0
