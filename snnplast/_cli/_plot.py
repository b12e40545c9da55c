"""``snnplast plot``: learning curves of runs and time/memory of benchmarks, as one image."""

from __future__ import annotations

import argparse

from ._paths import user_path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plot",
        help="plot learning curves of runs (and benchmark time/memory) into one image",
        description="Plot training loss, validation and test accuracy per epoch of each run "
        "(a folder written by snnplast train, or a snnplast compare folder: one line per "
        "method), the method and seed in the legend; and, for benchmark .json files (rows "
        "with a sequence length such as T and a time such as ms_per_step or median_s and/or a "
        "memory such as temp_bytes), time and memory against sequence length.",
    )
    p.add_argument("paths", nargs="+", type=user_path, metavar="RUN_DIR|BENCH.json",
                   help="run folders, compare folders, benchmark .json files")  # fmt: skip
    p.add_argument("--out", required=True, type=user_path, metavar="IMAGE",
                   help="image to write (.png, .pdf, .svg, .jpg)")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train import plot_runs

    print(f"wrote {plot_runs(args.paths, args.out)}")
    return 0
