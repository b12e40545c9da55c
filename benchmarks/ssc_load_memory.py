"""Peak memory and time of binning an SSC-sized training file: streamed (what ``load_dataset``
does) against reading every sample's events first (what it did before SSC).

Real SSC cannot be downloaded here, so the script writes an ``ssc_train.h5`` of `--samples`
samples (SSC's training file has 75466) with `--spikes` spikes each (uniform times over 1.2 s,
uniform channels) with ``write_shd_h5``, then bins it in two fresh processes, each reporting its
own peak resident memory (``ru_maxrss``) and wall time:

- ``streamed``: ``binned_split(folder, "train")``, chunks of 512 samples read and binned;
- ``events``: ``load_shd_split`` (every sample's times and channels in memory) then
  ``bin_samples``.

Both bin into 100 bins x 140 channels (uint8: 14 kB per sample), and the script checks that
they give the same frames before reporting.

    python benchmarks/ssc_load_memory.py --samples 75466 --spikes 2000 --folder /tmp/ssc-size
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _write(folder: Path, samples: int, spikes: int) -> None:
    from tqdm.auto import tqdm

    from snnplast.data import write_shd_h5

    path = folder / "ssc_train.h5"
    if path.is_file():
        return
    rng = np.random.default_rng(0)
    times, units = [], []
    for _ in tqdm(range(samples), desc="making events", unit="sample"):
        times.append(np.sort(rng.uniform(0.0, 1.2, spikes)).astype(np.float16))
        units.append(rng.integers(0, 700, spikes).astype(np.uint16))
    labels = rng.integers(0, 35, samples)
    speakers = rng.integers(0, 200, samples)
    write_shd_h5(path, times, units, labels, speakers, [f"w{i}" for i in range(35)])


def _measure(kind: str, folder: Path, cache: Path) -> None:
    """Runs in its own process: bins the file one way, prints peak RSS, time and a checksum."""
    start = time.perf_counter()
    if kind == "streamed":
        from snnplast.data._loading.loader import binned_split

        x = binned_split(folder, "train", cache_dir=cache, progress=False)[0].x
    else:
        from snnplast.data import bin_samples, load_shd_split

        events = load_shd_split(folder, "train", cache_dir=cache, progress=False)
        x = bin_samples(events.times, events.units, 100, 1.4, 700, 5)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    digest = int(x.astype(np.int64).sum()), list(x.shape)
    print(json.dumps({"kind": kind, "seconds": seconds, "peak_mib": peak_mib, "sum": digest}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=75466)
    parser.add_argument("--spikes", type=int, default=2000)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(args.measure, args.folder, args.cache)
        return
    folder = args.folder or Path(tempfile.mkdtemp(prefix="ssc-size-"))
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder, args.samples, args.spikes)
    size_mib = (folder / "ssc_train.h5").stat().st_size / 2**20
    results = []
    for kind in ("streamed", "events"):
        # A fresh cache each time, so the streamed run bins rather than reads a cached result.
        with tempfile.TemporaryDirectory() as cache:
            out = subprocess.run(
                [sys.executable, __file__, "--measure", kind, "--folder", str(folder),
                 "--cache", cache],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
        results.append(json.loads(out.strip().splitlines()[-1]))
    if results[0]["sum"] != results[1]["sum"]:
        raise SystemExit(f"the two ways binned differently: {results}")
    print(f"`python benchmarks/ssc_load_memory.py --samples {args.samples} --spikes {args.spikes}`")
    print(f"file: {args.samples} samples x {args.spikes} spikes, {size_mib:.0f} MiB")
    print("| way | wall s | peak RSS MiB |\n|---|--:|--:|")
    for r in results:
        print(f"| {r['kind']} | {r['seconds']:.1f} | {r['peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
