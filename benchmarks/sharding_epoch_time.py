"""Epoch time of ``fit`` with the batch on one host device and split over two.

On a CPU the devices are forced with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``
(set here before JAX starts, unless already set). Two "devices" of one CPU share its cores, so
splitting the batch cannot make an epoch faster; the point is what the sharded path costs. How
far apart the final parameters end is reported: rounding differences (another order of the
batch sum) grow over hundreds of steps; agreement over a few steps is what
``tests/test_sharding.py`` checks.

    python benchmarks/sharding_epoch_time.py [--hidden 128] [--epochs 4] [--method bptt]

Prints a markdown table and writes it to ``benchmarks/results/sharding_epoch_time.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import equinox as eqx
import jax
import numpy as np

from snnplast.data import load_dataset
from snnplast.train import TrainConfig, fit, load_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--method", default="bptt")
    parser.add_argument("--model", default="rlif")
    args = parser.parse_args()
    assert len(jax.devices()) >= 2, "needs two devices: set XLA_FLAGS before starting"
    dataset = load_dataset("synth", progress=False)
    config = TrainConfig(model=args.model, hidden=args.hidden, method=args.method,
                         epochs=args.epochs, data="synth")
    rows, models = [], []
    for devices in (1, 2):
        with tempfile.TemporaryDirectory() as folder:
            summary = fit(config, dataset, folder, progress=False, devices=devices)
            records = [json.loads(line) for line in open(Path(folder) / "metrics.jsonl")]
            models.append(load_model(folder))
        # The first epoch also pays for the evaluation's compile: left out of the median.
        epoch = statistics.median(r["train_seconds"] for r in records[1:])
        rows.append((devices, epoch, summary["compile_seconds"], summary["test_accuracy"]))
    diffs = [float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(
        jax.tree_util.tree_leaves(eqx.filter(models[0], eqx.is_inexact_array)),
        jax.tree_util.tree_leaves(eqx.filter(models[1], eqx.is_inexact_array)), strict=True)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    lines = [
        f"`python benchmarks/sharding_epoch_time.py --hidden {args.hidden} --epochs "
        f"{args.epochs} --method {args.method} --model {args.model}` (commit {commit}, JAX "
        f"{jax.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs): synth data, batch {config.batch}",
        "",
        "| host devices | train s / epoch (median of epochs 2..) | compile s | test acc |",
        "|--:|--:|--:|--:|",
        *[f"| {d} | {e:.2f} | {c:.1f} | {100 * a:.1f}% |" for d, e, c, a in rows],
        "",
        f"2 devices / 1 device: {rows[1][1] / rows[0][1]:.2f}x the epoch time; final parameters "
        f"differ by at most {max(diffs):.1e}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).with_name("results") / "sharding_epoch_time.md"
    out.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
