"""Audio files: reading mono WAV, changing a clip's sample rate, and the clips kept beside a
spike file for plotting.

Beside ``<stem>.h5`` the data commands keep ``<stem>_audio.npz``: every clip the cochlea heard, as
int16 (``audio``, concatenated; clip ``i`` is ``audio[offsets[i]:offsets[i+1]]``) with its rate
(``sample_rate[i]``) and the time of its first sample on the spike file's clock (``start_s[i]``).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._atomic import atomic_write


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A mono WAV file's samples, scaled to [-1, 1].

    **Arguments:**

    - `path`: a ``.wav`` file (PCM 8/16/24/32-bit or float).

    **Returns:** ``(samples [N] float64, sample_rate)``.

    **Raises:** `FileNotFoundError` if absent; `ValueError` naming the file when it is not WAV,
    has more than one channel, or holds no samples.
    """
    from scipy.io import wavfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            # Unknown chunks (cue points, metadata) are harmless; scipy warns and skips them.
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, data = wavfile.read(path)
    except (ValueError, EOFError, OSError) as e:
        raise ValueError(f"{path}: not a readable WAV file ({e})") from None
    if data.ndim == 2 and data.shape[1] == 1:
        data = data[:, 0]
    if data.ndim != 1:
        raise ValueError(
            f"{path}: has {data.shape[1]} channels; only mono WAV is supported (mix it down first)"
        )
    if data.size == 0:
        raise ValueError(f"{path}: holds no samples")
    if np.issubdtype(data.dtype, np.floating):
        x = data.astype(np.float64)
    elif data.dtype == np.uint8:
        x = (data.astype(np.float64) - 128.0) / 128.0
    else:
        x = data.astype(np.float64) / float(-np.iinfo(data.dtype).min)
    return x, int(rate)


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """`audio` at `rate` Hz, resampled to `target` Hz by polyphase filtering.

    ``scipy.signal.resample_poly`` with the ratio reduced to lowest terms (22050 -> 16000 Hz is
    up 320, down 441); its anti-aliasing filter removes what lies above the lower Nyquist
    frequency, so a band-limited recording stays band-limited. The result has
    ``ceil(N * target / rate)`` samples.

    **Arguments:**

    - `audio`: ``[N]`` samples.
    - `rate`, `target`: the rates in Hz (positive ints).

    **Returns:** ``[ceil(N * target / rate)]`` float64 (`audio` itself as float64 when the rates
    are equal).
    """
    from scipy.signal import resample_poly

    for name, value in (("rate", rate), ("target", target)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive int of Hz, got {value!r}")
    x = np.asarray(audio, dtype=np.float64)
    if int(rate) == int(target):
        return x
    g = math.gcd(int(rate), int(target))
    return resample_poly(x, int(target) // g, int(rate) // g)


def sidecar_path(spike_file: str | os.PathLike) -> Path:
    """``<stem>_audio.npz`` beside `spike_file`."""
    spike_file = Path(spike_file)
    return spike_file.with_name(f"{spike_file.stem}_audio.npz")


def _int16(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == np.int16:
        return x
    peak = float(np.abs(x).max()) if x.size else 0.0
    scale = 32767.0 / peak if peak > 1.0 else 32767.0
    return np.round(x * scale).astype(np.int16)


def save_sidecar(
    spike_file: str | os.PathLike,
    clips: Sequence[np.ndarray],
    sample_rates: Sequence[int],
    start_s: Sequence[float] | None = None,
) -> Path:
    """Keep `clips` beside `spike_file` (written atomically).

    **Arguments:**

    - `spike_file`: the ``.h5`` file the clips belong to, one clip per sample.
    - `clips`: waveforms (int16, or floats in [-1, 1]).
    - `sample_rates`: one rate per clip.
    - `start_s`: time of each clip's first sample on the spike clock (default 0).

    **Returns:** the sidecar's path.
    """
    path = sidecar_path(spike_file)
    clips = [_int16(c) for c in clips]
    offsets = np.concatenate([[0], np.cumsum([c.size for c in clips])]).astype(np.int64)
    start = np.zeros(len(clips)) if start_s is None else np.asarray(start_s, np.float64)
    audio = np.concatenate(clips) if clips else np.zeros(0, np.int16)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(
                f, audio=audio, offsets=offsets, sample_rate=np.asarray(sample_rates, np.int64),
                start_s=start,
            )  # fmt: skip

    return atomic_write(path, write)


def load_sidecar(spike_file: str | os.PathLike, index: int) -> tuple[np.ndarray, int, float] | None:
    """The clip behind sample `index` of `spike_file`, or None when no audio was kept.

    **Returns:** ``(int16 samples, sample_rate, start_s)`` or None.
    """
    path = sidecar_path(spike_file)
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            offsets = data["offsets"]
            if not 0 <= index < offsets.size - 1:
                return None
            clip = data["audio"][offsets[index] : offsets[index + 1]]
            return clip, int(data["sample_rate"][index]), float(data["start_s"][index])
    except (OSError, ValueError, KeyError):
        return None
