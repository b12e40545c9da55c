"""The SHD HDF5 file format: writing it, and checking a file before anything reads it.

Layout of the Spiking Heidelberg Digits files (Cramer et al. 2020), as `tonic.datasets.SHD` reads
it:

- ``spikes/times``: ``[N]`` variable-length float16, spike times in seconds;
- ``spikes/units``: ``[N]`` variable-length uint16, the channel (0..699) of each spike;
- ``labels``: ``[N]`` uint16 class indices into ``extra/keys``;
- ``extra/keys``: ``[n_classes]`` class names as byte strings;
- ``extra/speaker``: ``[N]`` uint16 speaker ids;
- ``extra/meta_info/{age,gender,body_height}``: per-speaker metadata (placeholders here).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from .._atomic import atomic_write

SHD_CHANNELS = 700
# Where the real files come from; named in every "file missing" message.
SHD_URL = "https://zenkelab.org/datasets/"
_FLOAT16_MAX = float(np.finfo(np.float16).max)
_REQUIRED = ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker")


class SHDFormatError(ValueError):
    """A file exists but is not a readable SHD HDF5 file (truncated, not HDF5, wrong layout)."""


class SHDMissingError(FileNotFoundError):
    """An SHD file is not where it must be; the message says exactly where to put it."""


def _one_line(text: object) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def missing_message(path: str | os.PathLike) -> str:
    """The one-line message for an absent SHD file at `path`."""
    path = Path(path).absolute()
    return (
        f"SHD file not found: {path}; put {path.name} exactly there "
        f"(unzip {SHD_URL}{path.name}.zip), nothing is downloaded automatically"
    )


def _check_samples(times, units, n_channels: int) -> None:
    for i, (t, u) in enumerate(zip(times, units)):
        t = np.asarray(t)
        u = np.asarray(u)
        if t.ndim != 1 or u.ndim != 1:
            raise ValueError(
                f"write_shd_h5: times[{i}] and units[{i}] must be 1-D, got shapes "
                f"{t.shape} and {u.shape}"
            )
        if t.shape != u.shape:
            raise ValueError(
                f"write_shd_h5: times[{i}] has {t.size} spikes but units[{i}] has {u.size}; "
                "they must match"
            )
        if t.size == 0:
            continue
        if not np.issubdtype(t.dtype, np.floating) and not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"write_shd_h5: times[{i}] must be numeric, got dtype {t.dtype}")
        if not np.all(np.isfinite(t)) or t.min() < 0 or t.max() > _FLOAT16_MAX:
            bad = t[~(np.isfinite(t) & (t >= 0) & (t <= _FLOAT16_MAX))][0]
            raise ValueError(
                f"write_shd_h5: times[{i}] contains {bad!r}; allowed: finite seconds in "
                f"[0, {_FLOAT16_MAX:g}] (stored as float16)"
            )
        if not np.issubdtype(u.dtype, np.integer):
            if not np.all(np.mod(u, 1) == 0):
                raise ValueError(f"write_shd_h5: units[{i}] must be integers, got dtype {u.dtype}")
        if u.min() < 0 or u.max() >= n_channels:
            bad = u[(u < 0) | (u >= n_channels)][0]
            raise ValueError(
                f"write_shd_h5: units[{i}] contains channel {bad!r}; allowed 0..{n_channels - 1} "
                f"(n_channels={n_channels})"
            )


def _check_ids(name: str, values, upper: int | None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"write_shd_h5: {name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"write_shd_h5: {name} must be integers, got dtype {arr.dtype}")
    limit = 65536 if upper is None else upper
    if arr.size and (arr.min() < 0 or arr.max() >= limit):
        bad = arr[(arr < 0) | (arr >= limit)][0]
        allowed = f"0..{limit - 1}" + ("" if upper is None else " (one per entry of keys)")
        raise ValueError(f"write_shd_h5: {name} contains {bad!r}; allowed {allowed}")
    return arr.astype(np.uint16)


def _vlen(arrays, dtype) -> np.ndarray:
    out = np.empty(len(arrays), dtype=object)
    out[:] = [np.asarray(a).astype(dtype) for a in arrays]
    return out


def write_shd_h5(
    path: str | os.PathLike,
    times: Sequence[np.ndarray],
    units: Sequence[np.ndarray],
    labels: Sequence[int] | np.ndarray,
    speakers: Sequence[int] | np.ndarray,
    keys: Sequence[str],
    *,
    n_channels: int = SHD_CHANNELS,
) -> Path:
    """Write spike data in exactly the layout of the SHD HDF5 files.

    The file appears only when complete: it is written to a temporary file in the same folder and
    renamed over `path`, so an error never leaves a half-written file behind.

    **Arguments:**

    - `path`: the ``.h5`` file to create (its folder must exist); replaced if present.
    - `times`: ``N`` 1-D arrays of spike times in seconds (non-negative; stored as float16).
    - `units`: ``N`` 1-D integer arrays, the channel of each spike, in ``0..n_channels-1``.
    - `labels`: ``[N]`` class indices into `keys`.
    - `speakers`: ``[N]`` non-negative speaker ids (< 65536).
    - `keys`: the class names, one per class (stored as byte strings).
    - `n_channels`: number of input channels (700 for SHD).

    **Returns:** the path written.
    """
    path = Path(path)
    if isinstance(n_channels, bool) or not isinstance(n_channels, int | np.integer):
        raise ValueError(f"write_shd_h5: n_channels must be an int, got {n_channels!r}")
    if not 0 < n_channels <= 65536:
        raise ValueError(f"write_shd_h5: n_channels must be in 1..65536 (uint16), got {n_channels}")
    if isinstance(keys, str | bytes) or len(keys) == 0:
        raise ValueError(f"write_shd_h5: keys must be a non-empty sequence of names, got {keys!r}")
    key_bytes = [k.encode() if isinstance(k, str) else bytes(k) for k in keys]
    lengths = {"times": len(times), "units": len(units), "labels": len(labels)}
    lengths["speakers"] = len(speakers)
    if len(set(lengths.values())) != 1:
        raise ValueError(
            f"write_shd_h5: times, units, labels and speakers differ in length: {lengths}"
        )
    _check_samples(times, units, n_channels)
    labels_u16 = _check_ids("labels", labels, len(key_bytes))
    speakers_u16 = _check_ids("speakers", speakers, None)
    if not path.parent.is_dir():
        raise ValueError(f"write_shd_h5: folder {path.parent} does not exist")

    n_speakers = int(speakers_u16.max()) + 1 if speakers_u16.size else 0

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.create_dataset(
                "spikes/times", data=_vlen(times, np.float16), dtype=h5py.vlen_dtype(np.float16)
            )
            f.create_dataset(
                "spikes/units", data=_vlen(units, np.uint16), dtype=h5py.vlen_dtype(np.uint16)
            )
            f.create_dataset("labels", data=labels_u16)
            f.create_dataset("extra/keys", data=np.array(key_bytes))
            f.create_dataset("extra/speaker", data=speakers_u16)
            # The real files index these by speaker id; nothing here is known about the speakers.
            f.create_dataset("extra/meta_info/age", data=np.zeros(n_speakers, np.uint8))
            f.create_dataset("extra/meta_info/gender", data=np.array([b"unknown"] * n_speakers))
            f.create_dataset("extra/meta_info/body_height", data=np.zeros(n_speakers, np.uint8))

    return atomic_write(path, write)


def check_shd_file(path: str | os.PathLike) -> Path:
    """Check that `path` is a readable SHD HDF5 file without reading its spikes.

    **Arguments:**

    - `path`: an ``shd_train.h5`` / ``shd_test.h5`` file (or one written by :func:`write_shd_h5`).

    **Returns:** the path, if the file is fine.

    **Raises:** :class:`SHDMissingError` (a `FileNotFoundError`) when the file is absent, saying
    where to put it; :class:`SHDFormatError` (a `ValueError`) naming the file and the problem when
    it is truncated, not HDF5, or lacks part of the layout. Both messages are one line.
    """
    path = Path(path).absolute()
    if not path.exists():
        raise SHDMissingError(missing_message(path))
    if not path.is_file():
        raise SHDFormatError(f"{path}: not a regular file; expected an SHD HDF5 file")
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if is_zip:
        raise SHDFormatError(f"{path}: is a zip archive, not HDF5; unzip it and use the .h5 inside")
    if path.stat().st_size == 0 or not h5py.is_hdf5(path):
        raise SHDFormatError(
            f"{path}: not an HDF5 file (size {path.stat().st_size} bytes); "
            "a truncated or failed download? replace it with the unzipped SHD file"
        )
    try:
        with h5py.File(path, "r") as f:
            missing = [name for name in _REQUIRED if not isinstance(f.get(name), h5py.Dataset)]
            if missing:
                raise SHDFormatError(
                    f"{path}: not in SHD layout, missing dataset(s) {', '.join(missing)}; "
                    f"required: {', '.join(_REQUIRED)}"
                )
            sizes = {name: f[name].shape for name in _REQUIRED if name != "extra/keys"}
            if len(set(sizes.values())) != 1 or len(sizes["labels"]) != 1:
                raise SHDFormatError(
                    f"{path}: spikes/times, spikes/units, labels and extra/speaker must be 1-D "
                    f"and of equal length, got shapes {sizes}"
                )
            for name, kind in (("spikes/times", "f"), ("spikes/units", "ui")):
                base = h5py.check_vlen_dtype(f[name].dtype)
                if base is None or base.kind not in kind:
                    wanted = "float" if kind == "f" else "integer"
                    raise SHDFormatError(
                        f"{path}: {name} must be variable-length {wanted}, "
                        f"got dtype {base or f[name].dtype}"
                    )
            keys = f["extra/keys"][()]
            labels = f["labels"][()]
            if labels.size and (labels.min() < 0 or labels.max() >= len(keys)):
                raise SHDFormatError(
                    f"{path}: labels reach {labels.max()} but extra/keys names only {len(keys)} "
                    "classes"
                )
            n = sizes["labels"][0]
            if n:
                # Reading the last sample touches the end of the file: a cheap truncation probe.
                f["spikes/times"][n - 1]
                f["spikes/units"][n - 1]
    except SHDFormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        raise SHDFormatError(
            f"{path}: truncated or damaged HDF5 ({_one_line(e)}); replace the file"
        ) from e
    return path
