"""A picture of one sample of an SHD-layout file: its spike raster, and its waveform if kept."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ..._atomic import atomic_write
from ..._errors import ValidationError
from .._audio.sidecar import load_sidecar

_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def read_sample(path: str | os.PathLike, index: int) -> dict:
    """Spikes, label and speaker of sample `index` of an SHD-layout file.

    **Returns:** a dict with ``times`` (float64 s), ``units``, ``label``, ``key`` (class name),
    ``speaker`` and ``n_samples``.

    **Raises:** `FileNotFoundError` if absent; `ValueError` naming the file for anything that is not
    an SHD-layout file, or for an `index` out of range.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p.name for p in path.glob("*.h5"))[:3]
        some = f" ({', '.join(files)})" if files else ""
        raise ValidationError(f"{path}: is a folder; pass one SHD-layout .h5 file of it{some}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise ValidationError(f"{path}: not an HDF5 file; expected an SHD-layout .h5 file")
    try:
        with h5py.File(path, "r") as f:
            n = f["labels"].shape[0]
            if n == 0:
                raise ValidationError(f"{path}: holds no samples")
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
                raise ValidationError(
                    f"--index {index!r} out of range: {path} has samples 0..{n - 1}"
                )
            label = int(f["labels"][index])
            keys = f["extra/keys"][()]
            key = keys[label].decode() if label < len(keys) else str(label)
            return {
                "times": np.asarray(f["spikes/times"][index], np.float64),
                "units": np.asarray(f["spikes/units"][index], np.int64),
                "label": label,
                "key": key,
                "speaker": int(f["extra/speaker"][index]),
                "n_samples": n,
            }
    except KeyError as e:
        raise ValidationError(f"{path}: not in SHD layout ({e})") from None


def check_image_path(out: str | os.PathLike) -> Path:
    """`out` as a Path, checked to name an image type :func:`draw_raster` writes, in an
    existing folder (``~`` is the home folder)."""
    out = Path(out).expanduser()
    if out.suffix.lower() not in _FORMATS:
        raise ValidationError(f"--out {out}: unknown image type; allowed: {', '.join(_FORMATS)}")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out.parent}: output folder does not exist")
    return out


def draw_raster(
    out: Path,
    times: np.ndarray,
    units: np.ndarray,
    title: str,
    wave: tuple[np.ndarray, int, float] | None = None,
) -> Path:
    """Save a raster plot (channel over time) of one sample's spikes, with its waveform above.

    **Arguments:**

    - `out`: the image (checked by :func:`check_image_path`); written atomically.
    - `times`, `units`: the spikes (seconds, channels).
    - `title`: the figure's title.
    - `wave`: ``(samples in [-1, 1], rate, start time)`` to draw above the raster, or None.

    **Returns:** `out`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2 if wave is not None else 1
    fig, axes = plt.subplots(
        rows, 1, figsize=(8, 6 if rows == 2 else 4.5), sharex=True, squeeze=False,
        gridspec_kw={"height_ratios": [1, 3] if rows == 2 else [1]},
    )  # fmt: skip
    axes = axes[:, 0]
    if wave is not None:
        samples, rate, start = wave
        axes[0].plot(start + np.arange(samples.size) / rate, samples, lw=0.5, color="0.2")
        axes[0].set_ylabel("amplitude")
    raster = axes[-1]
    raster.scatter(times, units, s=0.5, marker=".", color="black", lw=0)
    raster.set_xlabel("time (s)")
    raster.set_ylabel("channel")
    raster.set_ylim(-5, max(700, int(np.max(units, initial=0)) + 1) + 5)
    axes[0].set_title(title)
    fig.tight_layout()
    try:
        atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=120, format=out.suffix[1:].lower()))
    finally:
        plt.close(fig)
    return out


def plot_sample(
    path: str | os.PathLike, index: int, out: str | os.PathLike, *, audio: bool = True
) -> Path:
    """Save a raster plot (channel over time) of sample `index`, with its waveform above it when
    the clip was kept beside the file (see :mod:`.._audio.sidecar`).

    **Arguments:**

    - `path`: an SHD-layout ``.h5`` file.
    - `index`: which sample.
    - `out`: image file to write (``.png``, ``.pdf``, ``.svg``, ``.jpg``); written atomically.
    - `audio`: draw the waveform if available.

    **Returns:** `out`.
    """
    out = check_image_path(out)
    sample = read_sample(path, index)
    clip = load_sidecar(path, index) if audio else None
    wave = None if clip is None else (clip[0] / 32768.0, clip[1], clip[2])
    title = (
        f"{Path(path).name} #{index}: '{sample['key']}' (class {sample['label']}), "
        f"speaker {sample['speaker']}, {sample['times'].size} spikes"
    )
    return draw_raster(out, sample["times"], sample["units"], title, wave)
