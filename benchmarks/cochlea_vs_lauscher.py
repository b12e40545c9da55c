"""Seconds per utterance: snnplast's vectorised cochlea against the ``lauscher`` package.

Both run the same chain (RMS normaliser, Hanning window, Sieroka basilar membrane, Meddis hair
cell, bushy cells; 700 channels) on the same clips. Lauscher loops over samples in Python and
spreads channels over a process pool; snnplast scans time once with every channel (and several
clips) at once.

Correctness is checked before anything is timed: per-channel spike counts of snnplast (averaged
over seeds) must correlate with Lauscher's at >= 0.9 and the total counts agree within 5%
(a single Lauscher run is noisy: two of its own runs correlate at about 0.91).

Reported, per utterance:

- ``lauscher``: the whole chain, one run per clip (it takes a minute or more);
- ``snnplast, first call``: compilation plus the clip length's basilar-membrane transfer matrix,
  paid once per process and length;
- ``snnplast, one clip``: steady state of ``cochlea(audio, rate)``, median of repeats;
- ``snnplast, batch``: ``cochlea_batch`` over many clips with one worker process per core,
  wall time (worker start-up and transfer matrices included) divided by the number of clips.

Usage (needs the extras: ``pip install -e '.[lauscher,speech]'``)::

    python benchmarks/cochlea_vs_lauscher.py [--clips 2] [--repeats 5] [--batch-clips 128]

Without eSpeak NG the clips are synthetic vowels of the same length. Timings depend on the
machine and on its load; the ratio is what to report.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np


def speech_clips(n: int) -> tuple[list[np.ndarray], int, str]:
    """`n` eSpeak NG digits (about 0.45 s each) at 22050 Hz, or vowels without eSpeak NG."""
    words = ["seven", "three", "sieben", "drei", "zero", "null"]
    try:
        from snnplast.data._speech.espeak import Espeak, SpeechUnavailableError

        with Espeak() as engine:
            voices = ["en+m3", "en-us+f2", "de+m1", "de+f3", "en+klatt4", "de+Andy"]
            clips = [
                engine.synthesize(words[i % 6], voices[i % 6]).astype(np.float64) / 32768
                for i in range(n)
            ]
            return clips, engine.sample_rate, "eSpeak NG digits"
    except (ImportError, SpeechUnavailableError):
        rate = 22050
        t = np.arange(int(0.45 * rate)) / rate
        clips = []
        for i in range(n):
            f0 = 110 + 30 * i
            x = sum(
                np.exp(-(((k * f0 - 700) / 250) ** 2)) * np.sin(2 * np.pi * k * f0 * t)
                for k in range(1, 40)
            )
            clips.append(x + 0.01 * np.random.default_rng(i).standard_normal(t.size))
        return clips, rate, "synthetic vowels"


def lauscher_run(x: np.ndarray, rate: int, seed: int) -> tuple[np.ndarray, float]:
    """Per-channel spike counts of one Lauscher run, and its wall time."""
    from lauscher.audiowaves import MonoAudioWave
    from lauscher.transformations.wave2spike import Wave2Spike

    np.random.seed(seed)
    start = time.perf_counter()
    spikes = MonoAudioWave(x.copy(), rate).transform(Wave2Spike(num_channels=700))
    seconds = time.perf_counter() - start
    return np.bincount(spikes.spike_labels.astype(int), minlength=700), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=2, help="clips run through lauscher")
    parser.add_argument("--repeats", type=int, default=5, help="snnplast repeats per clip")
    parser.add_argument("--seeds", type=int, default=8, help="snnplast seeds for the check")
    parser.add_argument("--batch-clips", type=int, default=128, help="clips in the batch run")
    args = parser.parse_args()

    clips, rate, kind = speech_clips(max(args.clips, 1))
    print(f"{kind}, {rate} Hz, lengths {[round(c.size / rate, 3) for c in clips]} s")

    # Lauscher forks a process pool: run it before JAX starts its threads in this process.
    lauscher_s, lauscher_counts = [], []
    for i, x in enumerate(clips[: args.clips]):
        counts, seconds = lauscher_run(x, rate, seed=i)
        lauscher_s.append(seconds)
        lauscher_counts.append(counts)

    import jax

    from snnplast.data import cochlea, cochlea_batch

    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}"
    )
    first_s, steady_s = [], []
    for i, x in enumerate(clips[: args.clips]):
        # Compilation and the clip length's transfer matrix show up in the first call only.
        start = time.perf_counter()
        ours = [np.bincount(cochlea(x, rate, seed=0).units, minlength=700)]
        first_s.append(time.perf_counter() - start)
        times = []
        for r in range(args.repeats):
            start = time.perf_counter()
            cochlea(x, rate, seed=1 + r)
            times.append(time.perf_counter() - start)
        steady_s.append(statistics.median(times))
        ours += [
            np.bincount(s.units, minlength=700)
            for s in cochlea_batch([x] * args.seeds, rate, seeds=range(100, 100 + args.seeds))
        ]
        counts = lauscher_counts[i]
        mean = np.mean(ours, axis=0)
        corr = np.corrcoef(mean, counts)[0, 1]
        ratio = mean.sum() / counts.sum()
        print(
            f"clip {i}: lauscher {lauscher_s[i]:.1f} s, {counts.sum()} spikes; snnplast mean of "
            f"{len(ours)} seeds {mean.sum():.0f} spikes (x{ratio:.3f}), per-channel r = {corr:.3f}"
        )
        if corr < 0.9 or abs(ratio - 1) > 0.05:
            raise SystemExit(f"clip {i}: outputs disagree (r={corr:.3f}, count ratio {ratio:.3f})")

    batch = [clips[i % len(clips)] for i in range(args.batch_clips)]
    workers = max(1, min(os.cpu_count() or 1, 8))
    start = time.perf_counter()
    cochlea_batch(batch, rate, seeds=range(len(batch)), workers=workers)
    batch_s = (time.perf_counter() - start) / len(batch)

    lauscher_mean = statistics.mean(lauscher_s)
    rows = [
        ("lauscher 1.0.1 (process pool)", lauscher_mean),
        ("snnplast, first call (compile + transfer matrix)", statistics.mean(first_s)),
        ("snnplast, one clip (steady state, median)", statistics.mean(steady_s)),
        (f"snnplast, batch of {len(batch)} ({workers} workers, all included)", batch_s),
    ]
    print()
    print("| cochlea | s / utterance | speed-up vs lauscher |")
    print("|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} | {lauscher_mean / seconds:.0f}x |")


if __name__ == "__main__":
    main()
