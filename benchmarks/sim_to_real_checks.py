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
    python benchmarks/sim_to_real_checks.py linear [--real DIR] [--data FOLDER]
        A linear probe (needs scikit-learn): multinomial logistic regression on coarse
        log spike counts (20 x 28 cells of the binned sample, each sample standardised) trained
        on the English words of a synthetic training split (the default set, or FOLDER), tested
        on the real recordings; also trained on time-shifted copies (-6..2 bins), on a FOLDER
        made by ``sim_to_real_voices.py flite`` or ``neural`` split into its eSpeak NG and other
        speakers (beside the same speakers' eSpeak NG words and random draws of as many eSpeak NG
        speakers from the default set: the probe's spread; then each voice of the source apart,
        and both groups on the word time axis), and
        with both sides binned on the word time axis (``--time-axis word``, 40 bins), and
        trained on all 20 words (scored over all 20, as the network is). The
        real set is only ever tested on (it is the validation set: nothing trains on it).
    python benchmarks/sim_to_real_checks.py words OUT.png [--real DIR] [--words 3,2,8]
        The mean raster of each of some words (log of the mean count per bin and pooled
        channel, binned on the word time axis, 40 bins), the default set's training speakers
        above the real recordings: what a word looks like to the network on average, on each
        side. Prints where the formants above 1.6 kHz lie through each word.

Without the folder of real recordings ``levels`` says so and exits (status 0).
"""

from __future__ import annotations

import argparse
import glob
import json
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
# The manifests ``sim_to_real_voices.py`` writes beside a variant's training split: which of its
# speakers speak English with another voice source.
MANIFESTS = {"Flite": "flite_speakers.json", "neural": "neural_speakers.json"}
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


def _coarse(x: np.ndarray) -> np.ndarray:
    n, t, c = x.shape
    x = np.log1p(x.reshape(n, 20, t // 20, 28, c // 28).sum((2, 4)).astype(np.float64))
    x = x.reshape(n, -1) - x.reshape(n, -1).mean(1, keepdims=True)
    return x / (x.std(1, keepdims=True) + 1e-9)


def _shifted(x: np.ndarray, bins: int) -> np.ndarray:
    out = np.roll(x, bins, axis=1)
    if bins > 0:
        out[:, :bins] = 0
    elif bins < 0:
        out[:, bins:] = 0
    return out


def linear(real_dir: Path, data: Path | None) -> int:
    if not real_dir.is_dir():
        print(f"sim_to_real_checks: skipped: no real recordings at {real_dir} (pass --real DIR)")
        return 0
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        print("sim_to_real_checks: skipped: the linear probe needs scikit-learn")
        return 0
    from snnplast.data import load_recordings
    from snnplast.data._loading.loader import binned_split

    real, _, _ = load_recordings(real_dir, progress=False)
    rx, ry = np.asarray(real.x), np.asarray(real.y)
    train, _ = binned_split(data or ensure_speech_shd(), True, progress=False)
    x, y, who = np.asarray(train.x), np.asarray(train.y), np.asarray(train.speakers)
    english = y < 10

    def probe(features, labels, tests) -> float:
        model = LogisticRegression(C=0.05, max_iter=3000).fit(_coarse(features), labels)
        return float(np.mean(model.predict(_coarse(tests[0])) == tests[1]))

    print(f"train: English words of {data or 'the default set'}; test: {len(ry)} real recordings")
    print(f"  as made:            {probe(x[english], y[english], (rx, ry)):.1%}")
    shifts = range(-6, 3, 2)
    many = np.concatenate([_shifted(x[english], k) for k in shifts])
    print(f"  shifted -6..2 bins: {probe(many, np.tile(y[english], len(shifts)), (rx, ry)):.1%}")
    # Both sides binned on the word time axis (each sample's word stretched over 40 bins).
    real, _, _ = load_recordings(real_dir, n_bins=40, time_axis="word", progress=False)
    train, _ = binned_split(data or ensure_speech_shd(), True, n_bins=40, time_axis="word",
                            progress=False)  # fmt: skip
    word_x, word_y, word_who = np.asarray(train.x), np.asarray(train.y), np.asarray(train.speakers)
    tests = (np.asarray(real.x), np.asarray(real.y))
    print(f"  word time axis:     {probe(word_x[word_y < 10], word_y[word_y < 10], tests):.1%}")
    # As the network is scored: trained on all 20 words, the argmax over all 20.
    print(f"  all 20 words, as made:          {probe(x, y, (rx, ry)):.1%}")
    print(f"  all 20 words, word time axis:   {probe(word_x, word_y, tests):.1%}")
    for source, manifest in MANIFESTS.items():
        if not (data and (data / manifest).is_file()):
            continue
        listed = json.loads((data / manifest).read_text())["speakers"]
        chosen = [int(k) for k in listed]
        new = np.isin(who, chosen)
        for name, part in (("eSpeak NG speakers", ~new), (f"{source} speakers", new)):
            keep = english & part
            print(f"  {name} only ({keep.sum()}): {probe(x[keep], y[keep], (rx, ry)):.1%}")
        # The yardstick for the line above: the same speakers' eSpeak NG words in the default
        # set, and as many other speakers drawn at random (the probe's spread over speakers).
        base, _ = binned_split(ensure_speech_shd(), True, progress=False)
        bx, by, bwho = np.asarray(base.x), np.asarray(base.y), np.asarray(base.speakers)
        same = (by < 10) & np.isin(bwho, chosen)
        same_score = probe(bx[same], by[same], (rx, ry))
        print(f"  the same speakers, eSpeak NG (default set): {same_score:.1%}")
        rng = np.random.default_rng(0)
        drawn = [
            probe(bx[keep], by[keep], (rx, ry))
            for keep in ((by < 10) & np.isin(bwho, rng.permutation(np.unique(bwho))[: len(chosen)])
                         for _ in range(6))
        ]  # fmt: skip
        print(f"  {len(chosen)} eSpeak NG speakers drawn at random, 6 draws: mean "
              f"{np.mean(drawn):.1%}, sd {np.std(drawn, ddof=1):.1%}, "
              f"range {min(drawn):.1%}-{max(drawn):.1%}")  # fmt: skip
        # Each voice of the source apart, beside its speakers' eSpeak NG words.
        for voice in sorted({who_is["voice"] for who_is in listed.values()}):
            ids = [int(k) for k, who_is in listed.items() if who_is["voice"] == voice]
            keep, same = english & np.isin(who, ids), (by < 10) & np.isin(bwho, ids)
            print(f"  {source} voice {voice} only ({keep.sum()}): "
                  f"{probe(x[keep], y[keep], (rx, ry)):.1%}; the same speakers, eSpeak NG: "
                  f"{probe(bx[same], by[same], (rx, ry)):.1%}")  # fmt: skip
        new = np.isin(word_who, chosen)
        scores = [probe(word_x[k], word_y[k], tests) for k in (~new & (word_y < 10),
                                                               new & (word_y < 10))]  # fmt: skip
        print(f"  word time axis, eSpeak NG speakers only: {scores[0]:.1%}, {source} speakers "
              f"only: {scores[1]:.1%}")  # fmt: skip
    return 0


def words(out: Path, real_dir: Path, which: list[int]) -> int:
    if not real_dir.is_dir():
        print(f"sim_to_real_checks: skipped: no real recordings at {real_dir} (pass --real DIR)")
        return 0
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from snnplast.data import load_recordings
    from snnplast.data._loading.loader import binned_split

    real, names, _ = load_recordings(real_dir, n_bins=40, time_axis="word", progress=False)
    train, _ = binned_split(ensure_speech_shd(), True, n_bins=40, time_axis="word", progress=False)
    fig, axes = plt.subplots(2, len(which), figsize=(3 * len(which), 5.5), sharex=True, sharey=True)
    for j, word in enumerate(which):
        for i, (side, split) in enumerate((("synthetic", train), ("real", real))):
            y = np.asarray(split.y)
            mean = np.asarray(split.x)[y == word].mean(0).astype(np.float64)
            ax = axes[i, j]
            ax.imshow(np.log1p(mean).T, aspect="auto", origin="upper", cmap="magma")
            ax.set_title(f"{side} '{names[word]}' (mean of {int((y == word).sum())})", fontsize=9)
            # Where the second and third formants lie (pooled channels 25-75, about 1.3-8.8 kHz),
            # through the word: the spike-weighted centre channel of each run of 5 bins.
            band = mean[:, 25:75]
            centre = (band * np.arange(25, 75)).sum(1) / np.maximum(band.sum(1), 1e-9)
            runs = " ".join(f"{centre[b:b + 5].mean():5.1f}" for b in range(5, 35, 5))
            print(f"{names[word]:>6} {side:>9}: centre of channels 25-75 in bins 5-9, 10-14, .., "
                  f"30-34: {runs}")  # fmt: skip
    for ax in axes[:, 0]:
        ax.set_ylabel("pooled channel (0: high frequencies)")
    for ax in axes[1]:
        ax.set_xlabel("bin of the word axis")
    fig.tight_layout()
    fig.savefig(out, dpi=60)
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="check", required=True)
    sub.add_parser("levels").add_argument("--real", type=Path, default=DEFAULT_REAL)
    sub.add_parser("band-limit").add_argument("out", type=Path)
    probe = sub.add_parser("linear")
    probe.add_argument("--real", type=Path, default=DEFAULT_REAL)
    probe.add_argument("--data", type=Path, default=None, help="a synthetic set's folder")
    mean = sub.add_parser("words")
    mean.add_argument("out", type=Path)
    mean.add_argument("--real", type=Path, default=DEFAULT_REAL)
    mean.add_argument("--words", default="3,2,8", help="class ids (default 3,2,8)")
    args = p.parse_args(argv)
    if args.check == "words":
        return words(args.out, args.real, [int(w) for w in args.words.split(",")])
    if args.check == "linear":
        return linear(args.real, args.data)
    return levels(args.real) if args.check == "levels" else band_limit(args.out)


if __name__ == "__main__":
    sys.exit(main())
