"""Sim-to-real checks that need no training: do real recordings and the default synthetic set
meet the cochlea at the same operating point, and what does an 8 kHz channel cost?

    python benchmarks/sim_to_real_checks.py levels [--real DIR]
        80 real recordings (takes 0 and 1 of every digit and speaker) against 80 synthetic test
        clips of the default set, dry and through an 8 kHz channel: duration, spikes per clip
        and per second, the onset in the binned window, spikes per pooled channel and second
        in five bands (pooled channel 0 = the base, high frequencies).
    python benchmarks/sim_to_real_checks.py band-limit OUT_DIR
        The default set's test split resampled to 8 kHz as WAV files (``LABEL_sSPEAKER_I.wav``),
        for ``snnplast evaluate RUN --data OUT_DIR``: what an 8 kHz channel alone costs a model.

Without the folder of real recordings ``levels`` says so and exits (status 0).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

import h5py
import numpy as np
from scipy.io import wavfile

from snnplast.data import cochlea_batch, read_wav, resample
from snnplast.data._audio.sidecar import load_sidecar
from snnplast.data._speech.speech_shd import ensure_speech_shd

DEFAULT_REAL = Path(
    os.environ.get("SNNPLAST_REAL_DIGITS")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-digits"
)
BANDS = [(0, 30), (30, 50), (50, 70), (70, 100), (100, 140)]


def _test_clips(n: int = 80) -> list[np.ndarray]:
    test = ensure_speech_shd() / "shd_test.h5"
    clips = []
    for i in range(0, 240, 3):
        clip, _, _ = load_sidecar(test, i)
        clips.append(np.asarray(clip, np.float64))
        if len(clips) >= n:
            break
    return clips


def _stats(clips: list[np.ndarray], name: str) -> None:
    spikes = cochlea_batch(clips, 16000, seeds=list(range(len(clips))), workers=1)
    pooled = np.zeros((len(clips), 140))
    duration = np.array([c.size / 16000 for c in clips])
    onsets = []
    for k, s in enumerate(spikes):
        np.add.at(pooled[k], s.units // 5, 1)
        if s.times.size:
            h, edges = np.histogram(s.times, bins=np.arange(0, 1.41, 0.014))
            onsets.append(edges[np.argmax(h > 0.3 * h.max())])
    total = pooled.sum(1)
    print(f"{name}: n={len(clips)} duration {duration.mean():.2f} s, spikes per clip "
          f"{total.mean():.0f}, per second {np.mean(total / duration):.0f}, onset "
          f"{np.mean(onsets) * 1000:.0f} ms")  # fmt: skip
    rates = " ".join(
        f"{a}-{b}: {(pooled[:, a:b].sum(1) / duration).mean() / (b - a):.1f}" for a, b in BANDS
    )
    print(f"   spikes per pooled channel and second: {rates}")


def levels(real_dir: Path) -> int:
    if not real_dir.is_dir():
        print(f"sim_to_real_checks: skipped: no real recordings at {real_dir} (pass --real DIR)")
        return 0
    files = sorted(glob.glob(f"{real_dir}/*_*_0.wav")) + sorted(glob.glob(f"{real_dir}/*_*_1.wav"))
    real = []
    for f in files:
        audio, rate = read_wav(f)
        real.append(resample(np.asarray(audio, np.float64), rate, 16000))
    synthetic = _test_clips()
    _stats(real, "real")
    _stats(synthetic, "synthetic")
    _stats([resample(resample(c, 16000, 8000), 8000, 16000) for c in synthetic], "synthetic 8kHz")
    return 0


def band_limit(out: Path) -> int:
    test = ensure_speech_shd() / "shd_test.h5"
    with h5py.File(test) as f:
        labels, speakers = f["labels"][:], f["extra/speaker"][:]
    out.mkdir(parents=True, exist_ok=True)
    for i in range(len(labels)):
        clip, rate, _ = load_sidecar(test, i)
        x = resample(np.asarray(clip, np.float64), rate, 8000)
        x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
        wavfile.write(out / f"{labels[i]}_s{speakers[i]}_{i}.wav", 8000, x)
    print(f"{len(labels)} files in {out}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="check", required=True)
    sub.add_parser("levels").add_argument("--real", type=Path, default=DEFAULT_REAL)
    sub.add_parser("band-limit").add_argument("out", type=Path)
    args = p.parse_args(argv)
    return levels(args.real) if args.check == "levels" else band_limit(args.out)


if __name__ == "__main__":
    sys.exit(main())
