"""A picture of one recording as the cochlea hears it: its waveform above its spike raster."""

from __future__ import annotations

import os
from pathlib import Path

from .._audio.formats import read_audio
from .._cochlea.cochlea import Cochlea, cochlea
from .._shd.show import check_image_path, draw_raster


def plot_recording(
    path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    seed: int = 0,
    model: Cochlea | None = None,
    audio: bool = True,
) -> Path:
    """Save the raster of an audio file's spikes through the cochlea, its waveform above.

    **Arguments:**

    - `path`: an audio file :func:`read_audio` reads (any rate, any channels).
    - `out`: image file to write (``.png``, ``.pdf``, ``.svg``, ``.jpg``); written atomically.
    - `seed`: the cochlea's randomness.
    - `model`: the cochlea (default: Lauscher's at the working rate).
    - `audio`: draw the waveform.

    **Returns:** `out`.
    """
    out = check_image_path(out)
    samples, rate = read_audio(path)
    spikes = cochlea(samples, rate, seed=seed, model=model)
    title = (
        f"{Path(path).name}: {samples.size / rate:.2f} s at {rate} Hz, {spikes.times.size} spikes"
    )
    wave = (samples, rate, 0.0) if audio else None
    return draw_raster(out, spikes.times, spikes.units, title, wave)
