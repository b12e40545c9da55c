"""Audio clips: reading a WAV file as one channel, and changing a clip's sample rate."""

from __future__ import annotations

import math
import os
import struct
import warnings
from pathlib import Path

import numpy as np

from ..._errors import ValidationError


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """A WAV file's samples as one channel, scaled to [-1, 1].

    **Arguments:**

    - `path`: a ``.wav`` file (PCM 8/16/24/32-bit or float), any number of channels (mixed down
      to their mean: a voice recorded in stereo holds the same speech on each channel).

    **Returns:** ``(samples [N] float64, sample_rate)``.

    **Raises:** `FileNotFoundError` if absent; `ValueError` naming the file when it is not WAV
    or holds no samples.
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
    except (ValueError, EOFError, OSError, struct.error) as e:
        # struct.error: a header cut short (a copy or a download that stopped part-way).
        raise ValidationError(f"{path}: not a readable WAV file ({e})") from None
    if data.size == 0:
        raise ValidationError(f"{path}: holds no samples")
    if np.issubdtype(data.dtype, np.floating):
        x = data.astype(np.float64)
    elif data.dtype == np.uint8:
        x = (data.astype(np.float64) - 128.0) / 128.0
    else:
        x = data.astype(np.float64) / float(-np.iinfo(data.dtype).min)
    return (x.mean(axis=1) if x.ndim == 2 else x), int(rate)


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
            raise ValidationError(f"{name} must be a positive int of Hz, got {value!r}")
    x = np.asarray(audio, dtype=np.float64)
    if int(rate) == int(target):
        return x
    g = math.gcd(int(rate), int(target))
    return resample_poly(x, int(target) // g, int(rate) // g)
