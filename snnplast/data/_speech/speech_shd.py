"""A Spiking Heidelberg Digits look-alike made from synthetic speech, on this machine.

eSpeak NG speaks SHD's 20 words (:mod:`.corpus`); each clip is resampled to 16 kHz and padded with
silence, each training clip may be recorded through a random room and channel (:mod:`.acoustics`;
dry by default), every clip passes through the Lauscher cochlea (:mod:`.._cochlea`), and the
spikes are written in SHD's exact file layout: ``shd_train.h5`` and ``shd_test.h5``, whose
speakers never meet (the test speakers even use voice variants no training speaker uses). Beside
them, ``shd_{train,test}_audio.npz`` keep the padded clips the cochlea heard, and ``speech_shd.json``
records how the folder was made; it is written last, so its presence with matching settings means
the folder is complete and reusable.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from ..._atomic import atomic_write
from ..._errors import ValidationError, ValidationTypeError
from .._audio.sidecar import save_sidecar
from .._audio.wav import resample
from .._cache import cache_root
from .._cochlea.basilar_membrane import fast_length
from .._cochlea.cochlea import WORKING_RATE, Cochlea, Spikes, cochlea_batch
from .._shd.file import write_shd_h5
from .acoustics import CLEAN, Acoustics
from .corpus import SHD_KEYS, Utterance, plan_corpus, synthesize

# 3: the cochlea resamples to its working rate, and a set records how its training utterances
# were recorded (.acoustics); the settings of older sets do not match, so they are remade.
SPEECH_SHD_VERSION = 3
MANIFEST = "speech_shd.json"
# The default set: 2000 training and 240 test utterances (100 + 12 speakers), made in 133 s on
# 2 cores (eSpeak NG 5 s, the cochlea 128 s; README). Fewer speakers do not generalise: a recurrent ALIF
# network trained with BPTT reaches ~60% on held-out speakers with 40, ~82% with 100.
DEFAULT_PER_CLASS = 100
DEFAULT_SEED = 0
# eSpeak NG speaks at 22050 Hz; the clips are kept at the cochlea's working rate (16 kHz), where
# the recording chain (.acoustics) acts on them.
AUDIO_RATE = WORKING_RATE
# Silence kept before and after the speech, and the step clip lengths are rounded up to: clips of
# equal length share the basilar membrane's transfer matrix, which costs seconds per length.
_MARGIN_S = 0.03
_LENGTH_STEP_S = 0.1


def held_out_per_class(per_class: int) -> int:
    """Test utterances per class (one per held-out speaker) for `per_class` training ones: an
    eighth, enough for an accuracy to about 3% at the default size and cheap to make."""
    return max(1, round(per_class / 8))


def place(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Trim eSpeak's silences, then centre the speech in a silent clip of a standard length.

    The length is the speech plus :data:`_MARGIN_S` on each side, rounded up to a multiple of
    :data:`_LENGTH_STEP_S` and then to a length with a fast transform.

    **Arguments:**

    - `audio`: ``[N]`` speech samples.
    - `sample_rate`: its rate in Hz.

    **Returns:** the padded clip, float64 in the units of `audio`.
    """
    x = np.asarray(audio, dtype=np.float64)
    loud = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max())
    if loud.size == 0:
        raise ValueError("eSpeak NG produced silence")
    speech = x[loud[0] : loud[-1] + 1]
    step = _LENGTH_STEP_S * sample_rate
    n = int(math.ceil((speech.size + 2 * _MARGIN_S * sample_rate) / step) * step)
    n = fast_length(n)
    clip = np.zeros(n)
    start = (n - speech.size) // 2
    clip[start : start + speech.size] = speech
    return clip


def _to_int16(clip: np.ndarray) -> np.ndarray:
    peak = np.abs(clip).max()
    scale = min(1.0, 0.9 * 32767 / peak) if peak > 0 else 1.0
    return np.round(clip * scale).astype(np.int16)


def _clips(
    plan: list[Utterance], noise_snr: float | None, acoustics: list[Acoustics], progress
) -> list[np.ndarray]:
    """Speak `plan`, resample to :data:`AUDIO_RATE`, record each utterance through its
    :class:`Acoustics` (placed in a standard length first), add white noise."""
    raw, rate = synthesize(plan, progress="speech" if progress else False)
    clips = []
    for u, audio, recording in zip(plan, raw, acoustics):
        speech = resample(np.asarray(audio, np.float64), rate, AUDIO_RATE)
        rng = np.random.default_rng([u.seed, 0xAC0])
        clip = recording.apply(speech, AUDIO_RATE, rng, place=lambda x: place(x, AUDIO_RATE))
        if noise_snr is not None:
            # White noise over the whole clip, silences included, like a recording's background.
            speech_rms = np.sqrt(np.mean(speech**2))
            noise = np.random.default_rng(u.seed).standard_normal(clip.size)
            clip = clip + noise * speech_rms * 10 ** (-noise_snr / 20)
        clips.append(_to_int16(clip))
    return clips


def _cochlea_seed(seed: int, split: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), split, index]).generate_state(1)[0])


def _write_json(path: Path, data: dict) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2)))


def _settings(per_class, n_test, seed, noise_snr, acoustics: Acoustics, model: Cochlea) -> dict:
    return {
        "version": SPEECH_SHD_VERSION,
        "per_class": per_class,
        "held_out_per_class": n_test,
        "seed": seed,
        "noise_snr_db": noise_snr,
        "acoustics": repr(acoustics),
        "cochlea": repr(model),
    }


def _is_complete(out: Path, settings: dict) -> bool:
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    files = ("shd_train.h5", "shd_test.h5")
    return manifest.get("settings") == settings and all((out / f).is_file() for f in files)


def make_speech_shd(
    out: str | os.PathLike,
    *,
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = DEFAULT_SEED,
    noise_snr: float | None = None,
    acoustics: Acoustics = CLEAN,
    workers: int | None = None,
    model: Cochlea | None = None,
    progress: bool = True,
) -> Path:
    """Make (or reuse) a synthetic SHD in folder `out`.

    If `out` already holds a complete set made with the same settings, nothing is done.

    **Arguments:**

    - `out`: the folder (created if absent).
    - `per_class`: training utterances per class, one per training speaker; the test split gets
      :func:`held_out_per_class` of this, from as many held-out speakers.
    - `seed`: determines speakers, utterances and the cochlea's randomness: equal settings give
      identical files.
    - `noise_snr`: add white noise at this signal-to-noise ratio in dB to every clip (None:
      none).
    - `acoustics`: how the training utterances are recorded (rooms, microphones, channels,
      noise; see :class:`Acoustics`); the held-out test speakers stay dry eSpeak NG speech.
      :data:`CLEAN` (dry, the default: the recording chain :data:`RECORDED` did not improve
      accuracy on real voices where it was measured; see ``benchmarks/sim_to_real.py``).
    - `workers`: cochlea processes (default: one per CPU core, at most 8).
    - `model`: the cochlea's parameters (default: Lauscher's).
    - `progress`: show progress bars.

    **Returns:** `out`, holding ``shd_train.h5`` and ``shd_test.h5``.

    **Raises:** :class:`SpeechUnavailableError` without the ``speech`` extra (only when the set must
    be made).
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValidationError(f"per_class must be a positive int, got {per_class!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValidationError(f"seed must be an int in 0..2**32-1, got {seed!r}")
    if noise_snr is not None and not (
        isinstance(noise_snr, int | float) and -20 <= noise_snr <= 120
    ):
        raise ValidationError(f"noise_snr must be None or a number of dB in -20..120, got {noise_snr!r}")
    model = Cochlea() if model is None else model
    if workers is None:
        workers = max(1, min(os.cpu_count() or 1, 8))
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ValidationError(f"--out {out} exists and is not a folder")
    n_test = held_out_per_class(per_class)
    if not isinstance(acoustics, Acoustics):
        raise ValidationTypeError(f"acoustics must be an Acoustics, got {type(acoustics).__name__}")
    settings = _settings(per_class, n_test, seed, noise_snr, acoustics, model)
    if _is_complete(out, settings):
        return out
    out.mkdir(parents=True, exist_ok=True)
    # A manifest of other settings must not vouch for files about to be replaced.
    (out / MANIFEST).unlink(missing_ok=True)

    started = time.perf_counter()
    train, test = plan_corpus(per_class, n_test, seed=seed)
    plan = train + test
    clips = _clips(plan, noise_snr, [acoustics] * len(train) + [CLEAN] * len(test), progress)
    rate = AUDIO_RATE
    seeds = [_cochlea_seed(seed, int(i >= len(train)), i) for i in range(len(plan))]
    spikes: list[Spikes] = cochlea_batch(
        clips,
        rate,
        seeds=seeds,
        model=model,
        workers=workers,
        progress="cochlea" if progress else False,
    )
    stats = {}
    for name, lo, hi in (("train", 0, len(train)), ("test", len(train), len(plan))):
        part = plan[lo:hi]
        write_shd_h5(
            out / f"shd_{name}.h5",
            [s.times for s in spikes[lo:hi]],
            [s.units for s in spikes[lo:hi]],
            [u.label for u in part],
            [u.speaker.id for u in part],
            SHD_KEYS,
            n_channels=model.n_channels,
        )
        save_sidecar(out / f"shd_{name}.h5", clips[lo:hi], [rate] * (hi - lo))
        counts = np.array([s.times.size for s in spikes[lo:hi]])
        stats[name] = {
            "samples": len(part),
            "speakers": sorted({u.speaker.id for u in part}),
            "variants": sorted({u.speaker.variant for u in part}),
            "spikes_mean": float(counts.mean()),
            "spikes_min": int(counts.min()),
            "spikes_max": int(counts.max()),
            "duration_mean_s": float(np.mean([c.size for c in clips[lo:hi]]) / rate),
        }
    manifest = {
        "settings": settings,
        "keys": list(SHD_KEYS),
        "audio_sample_rate": rate,
        "seconds_to_make": round(time.perf_counter() - started, 1),
        **stats,
    }
    _write_json(out / MANIFEST, manifest)
    return out


def speech_shd_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the default synthetic SHD lives: ``<cache>/speech_shd/v<version>-n<per class>-s<seed>``."""
    name = f"v{SPEECH_SHD_VERSION}-n{DEFAULT_PER_CLASS}-s{DEFAULT_SEED}"
    return cache_root(cache_dir) / "speech_shd" / name


def ensure_speech_shd(cache_dir: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """The default synthetic SHD, made on first use (a few minutes), afterwards found at once.

    **Arguments:**

    - `cache_dir`: the cache root (default: ``$SNNPLAST_CACHE`` or ``~/.cache/snnplast``).
    - `progress`: show progress bars while making it.

    **Returns:** the folder holding ``shd_train.h5`` and ``shd_test.h5``.

    **Raises:** :class:`SpeechUnavailableError` when the set must be made but eSpeak NG (the
    ``speech`` extra) is not installed.
    """
    return make_speech_shd(speech_shd_dir(cache_dir), progress=progress)
