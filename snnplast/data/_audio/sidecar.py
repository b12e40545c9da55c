"""The clips a spike file was made from, kept beside it for plotting.

Beside ``<stem>.h5`` the data commands keep ``<stem>_audio.npz``: every clip the cochlea heard, as
int16 (``audio``, concatenated; clip ``i`` is ``audio[offsets[i]:offsets[i+1]]``) with its rate
(``sample_rate[i]``) and the time of its first sample on the spike file's clock (``start_s[i]``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..._atomic import atomic_write


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
