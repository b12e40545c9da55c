"""Audio files of any common format: which suffixes are audio, and reading one as a mono clip.

WAV goes through :func:`read_wav` (SciPy); the compressed and other container formats people
record in (FLAC, Ogg Vorbis/Opus, MP3, AIFF, ...) through libsndfile (the ``soundfile``
package). A file with several channels is mixed down to one (their mean), as a recording of
one voice on a stereo device holds the same speech on each channel.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..._errors import ValidationError
from .wav import read_wav


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    try:
        import soundfile
    except ImportError:  # pragma: no cover - soundfile is a dependency
        raise ValidationError(
            f"{path}: reading {path.suffix} files needs the soundfile package (pip install "
            "soundfile), or convert it to WAV"
        ) from None
    try:
        data, rate = soundfile.read(path, dtype="float64", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, TypeError, ValueError) as e:
        raise ValidationError(f"{path}: not a readable {path.suffix} file ({e})") from None
    if data.shape[0] == 0:
        raise ValidationError(f"{path}: holds no samples")
    return data.mean(axis=1), int(rate)


# Suffix -> reader of ``(samples [N] float64 in [-1, 1], sample_rate)``.
READERS: dict[str, Callable[[Path], tuple[np.ndarray, int]]] = {
    ".wav": read_wav,
    **dict.fromkeys(
        (".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".w64"),
        _read_soundfile,
    ),
}

AUDIO_SUFFIXES = frozenset(READERS)


def is_audio(path: str | os.PathLike) -> bool:
    """True when `path`'s suffix names an audio format :func:`read_audio` reads."""
    return Path(path).suffix.lower() in AUDIO_SUFFIXES


def check_audio(path: Path) -> None:
    """Raise a one-line `ValueError` naming `path` when its suffix is not an audio format."""
    if not is_audio(path):
        raise ValidationError(
            f"{path}: not an audio file; supported: {', '.join(sorted(AUDIO_SUFFIXES))}"
        )


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """An audio file's samples as one channel, scaled to [-1, 1].

    **Arguments:**

    - `path`: a ``.wav`` (PCM 8/16/24/32-bit or float), ``.flac``, ``.ogg``/``.oga``/``.opus``,
      ``.mp3``, ``.aif``/``.aiff``/``.aifc``, ``.au`` or ``.w64`` file, any number of channels
      (mixed down to their mean).

    **Returns:** ``(samples [N] float64, sample_rate)``.

    **Raises:** `FileNotFoundError` if absent; `ValueError` naming the file when its format is
    not one of these, it cannot be decoded, or it holds no samples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    check_audio(path)
    return READERS[path.suffix.lower()](path)
