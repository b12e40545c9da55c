"""The SHD HDF5 file format: writing it, and checking a file before anything reads it.

Layout of the Spiking Heidelberg Digits files (Cramer et al. 2020), as `tonic.datasets.SHD` reads
it:

- ``spikes/times``: ``[N]`` variable-length float16, spike times in seconds;
- ``spikes/units``: ``[N]`` variable-length uint16, the channel (0..699) of each spike;
- ``labels``: ``[N]`` uint16 class indices into ``extra/keys``;
- ``extra/keys``: ``[n_classes]`` class names as byte strings;
- ``extra/speaker``: ``[N]`` uint16 speaker ids;
- ``extra/meta_info/{age,gender,body_height}``: per-speaker metadata (placeholders here).

Files written here also carry the root attribute ``n_channels`` (absent from the real files,
which have 700 channels); readers take 700 when it is missing.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from ..._atomic import atomic_write
from ..._errors import ValidationError
from .hdf5_heap import HeapDamage, check_vlen_storage

SHD_CHANNELS = 700
# Where the real files come from; named in every "file missing" message.
SHD_URL = "https://zenkelab.org/datasets/"
_FLOAT16_MAX = float(np.finfo(np.float16).max)
_REQUIRED = ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker")
# A root attribute giving the channel count of files that do not have SHD's 700.
CHANNELS_ATTR = "n_channels"
# Samples read per h5py call: big enough to amortise the call, small enough for a progress bar.
_CHUNK = 512


class SHDFormatError(ValidationError):
    """A file exists but is not a readable SHD HDF5 file (truncated, not HDF5, wrong layout).

    A :class:`~snnplast.ValidationError`, so also a `ValueError`.
    """


class SHDMissingError(FileNotFoundError):
    """An SHD file is not where it must be; the message says exactly where to put it."""


def _one_line(text: object) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def missing_message(path: str | os.PathLike) -> str:
    """The one-line message for an absent SHD file at `path`."""
    path = Path(path).absolute()
    return (
        f"SHD file not found: {path}; put {path.name} exactly there (or its download "
        f"{SHD_URL}{path.name}.zip, unpacked on first use), nothing is downloaded automatically"
    )


def _check_samples(times, units, n_channels: int) -> None:
    for i, (t, u) in enumerate(zip(times, units)):
        t = np.asarray(t)
        u = np.asarray(u)
        if t.ndim != 1 or u.ndim != 1:
            raise ValidationError(
                f"write_shd_h5: times[{i}] and units[{i}] must be 1-D, got shapes "
                f"{t.shape} and {u.shape}"
            )
        if t.shape != u.shape:
            raise ValidationError(
                f"write_shd_h5: times[{i}] has {t.size} spikes but units[{i}] has {u.size}; "
                "they must match"
            )
        if t.size == 0:
            continue
        if not np.issubdtype(t.dtype, np.floating) and not np.issubdtype(t.dtype, np.integer):
            raise ValidationError(f"write_shd_h5: times[{i}] must be numeric, got dtype {t.dtype}")
        if not np.all(np.isfinite(t)) or t.min() < 0 or t.max() > _FLOAT16_MAX:
            bad = t[~(np.isfinite(t) & (t >= 0) & (t <= _FLOAT16_MAX))][0]
            raise ValidationError(
                f"write_shd_h5: times[{i}] contains {bad!r}; allowed: finite seconds in "
                f"[0, {_FLOAT16_MAX:g}] (stored as float16)"
            )
        if not np.issubdtype(u.dtype, np.integer):
            if not np.all(np.mod(u, 1) == 0):
                raise ValidationError(f"write_shd_h5: units[{i}] must be integers, got dtype {u.dtype}")
        if u.min() < 0 or u.max() >= n_channels:
            bad = u[(u < 0) | (u >= n_channels)][0]
            raise ValidationError(
                f"write_shd_h5: units[{i}] contains channel {bad!r}; allowed 0..{n_channels - 1} "
                f"(n_channels={n_channels})"
            )


def _check_ids(name: str, values, upper: int | None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValidationError(f"write_shd_h5: {name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValidationError(f"write_shd_h5: {name} must be integers, got dtype {arr.dtype}")
    limit = 65536 if upper is None else upper
    if arr.size and (arr.min() < 0 or arr.max() >= limit):
        bad = arr[(arr < 0) | (arr >= limit)][0]
        allowed = f"0..{limit - 1}" + ("" if upper is None else " (one per entry of keys)")
        raise ValidationError(f"write_shd_h5: {name} contains {bad!r}; allowed {allowed}")
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
        raise ValidationError(f"write_shd_h5: n_channels must be an int, got {n_channels!r}")
    if not 0 < n_channels <= 65536:
        raise ValidationError(f"write_shd_h5: n_channels must be in 1..65536 (uint16), got {n_channels}")
    if isinstance(keys, str | bytes) or len(keys) == 0:
        raise ValidationError(f"write_shd_h5: keys must be a non-empty sequence of names, got {keys!r}")
    key_bytes = [k.encode() if isinstance(k, str) else bytes(k) for k in keys]
    lengths = {"times": len(times), "units": len(units), "labels": len(labels)}
    lengths["speakers"] = len(speakers)
    if len(set(lengths.values())) != 1:
        raise ValidationError(
            f"write_shd_h5: times, units, labels and speakers differ in length: {lengths}"
        )
    _check_samples(times, units, n_channels)
    labels_u16 = _check_ids("labels", labels, len(key_bytes))
    speakers_u16 = _check_ids("speakers", speakers, None)
    if not path.parent.is_dir():
        raise ValidationError(f"write_shd_h5: folder {path.parent} does not exist")

    n_speakers = int(speakers_u16.max()) + 1 if speakers_u16.size else 0

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            # Not in the original files (always 700 channels); read back by `file_channels`.
            f.attrs[CHANNELS_ATTR] = np.int64(n_channels)
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
    with named_errors(path), h5py.File(path, "r") as f:
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
        file_channels(f, path)
        for name in ("labels", "extra/speaker"):
            if f[name].dtype.kind not in "ui":
                raise SHDFormatError(
                    f"{path}: {name} must hold integers, got dtype {f[name].dtype}"
                )
        keys = f["extra/keys"][()]
        if np.ndim(keys) != 1 or len(keys) == 0:
            raise SHDFormatError(
                f"{path}: extra/keys must list the class names, got shape {np.shape(keys)}"
            )
        labels = f["labels"][()]
        if labels.size and (labels.min() < 0 or labels.max() >= len(keys)):
            raise SHDFormatError(
                f"{path}: labels reach {labels.max()} but extra/keys names only {len(keys)} classes"
            )
        for name in ("spikes/times", "spikes/units"):
            try:
                check_vlen_storage(path, f, name)
            except HeapDamage as e:
                raise SHDFormatError(f"{path}: {e}; replace the file") from None
        n = sizes["labels"][0]
        if n:
            # Reading the last sample touches the end of the file: a cheap truncation probe.
            f["spikes/times"][n - 1]
            f["spikes/units"][n - 1]
    return path


# What h5py and NumPy raise on a damaged file; caught at the boundary and reported as one line
# naming the file, never as a traceback from inside them.
_H5_ERRORS = (
    OSError,
    KeyError,
    ValueError,
    TypeError,
    RuntimeError,
    IndexError,
    AttributeError,
    MemoryError,
    OverflowError,
)


@contextlib.contextmanager
def named_errors(path):
    """Turn what h5py and NumPy raise on a damaged file into one :class:`SHDFormatError` line
    naming `path`."""
    try:
        yield
    except SHDFormatError:
        raise
    except _H5_ERRORS as e:
        raise SHDFormatError(
            f"{path}: truncated or damaged HDF5 ({_one_line(e)}); replace the file"
        ) from e


def file_channels(f: h5py.File, path) -> int:
    """The channel count of the open SHD file `f`: its ``n_channels`` attribute, else 700."""
    value = f.attrs.get(CHANNELS_ATTR, SHD_CHANNELS)
    if np.ndim(value) != 0 or not np.issubdtype(np.asarray(value).dtype, np.integer):
        raise SHDFormatError(f"{path}: attribute {CHANNELS_ATTR}={value!r}; allowed: an integer")
    if not 0 < int(value) <= 65536:
        raise SHDFormatError(f"{path}: attribute {CHANNELS_ATTR}={value}; allowed 1..65536")
    return int(value)


def channels_of(path: str | os.PathLike) -> int:
    """The channel count of the SHD file at `path` (see :func:`file_channels`)."""
    with named_errors(path), h5py.File(path, "r") as f:
        return file_channels(f, path)


def check_same_channels(paths: Sequence[str | os.PathLike]) -> int:
    """The channel count shared by the files at `paths`; a one-line error naming them if not."""
    counts = {str(p): channels_of(p) for p in paths}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{p} has {n}" for p, n in counts.items())
        raise SHDFormatError(
            f"the files differ in their channel counts ({listed}); they must match"
        )
    return next(iter(counts.values()))


def _check_events(path, i: int, t: np.ndarray, u: np.ndarray, n_channels: int) -> None:
    if t.shape != u.shape:
        raise SHDFormatError(
            f"{path}: sample {i} has {t.size} spike times but {u.size} units; they must match"
        )
    if t.size and not (np.all(np.isfinite(t)) and t.min() >= 0):
        bad = t[~(np.isfinite(t) & (t >= 0))][0]
        raise SHDFormatError(
            f"{path}: sample {i} has spike time {bad}; allowed: finite seconds >= 0"
        )
    if u.size and u.min() < 0:
        raise SHDFormatError(f"{path}: sample {i} has spike unit {u.min()}; allowed >= 0")
    if u.size and u.max() >= n_channels:
        raise SHDFormatError(
            f"{path}: sample {i} has spike unit {u.max()}, but the file has {n_channels} "
            f"channels; allowed 0..{n_channels - 1}"
        )


def iter_shd_events(path: str | os.PathLike, progress: bool = False, desc: str | None = None):
    """Read an SHD file's spikes a chunk of samples at a time, checking each sample, so that a
    large file (SSC's 75k training samples) never has to be held in memory as events.

    **Arguments:** as :func:`read_shd_events`.

    **Yields:** ``(start, times, units)`` per chunk: the chunk's first sample index, then lists of
    float32 seconds and int32 channels, one array per sample.

    **Raises:** as :func:`read_shd_events`.
    """
    yield from _chunks(check_shd_file(path), progress, desc)


def _chunks(path: Path, progress: bool, desc: str | None):
    with named_errors(path), h5py.File(path, "r") as f:
        n_channels = file_channels(f, path)
        n = len(f["labels"])
        bar = tqdm(
            total=n, desc=desc or f"reading {path.name}", unit="sample", disable=not progress
        )
        with bar:
            for start in range(0, n, _CHUNK):
                stop = min(n, start + _CHUNK)
                chunk_t = f["spikes/times"][start:stop]
                chunk_u = f["spikes/units"][start:stop]
                times: list[np.ndarray] = []
                units: list[np.ndarray] = []
                for i, (t, u) in enumerate(zip(chunk_t, chunk_u, strict=True), start):
                    t, u = np.asarray(t, np.float32), np.asarray(u)
                    _check_events(path, i, t, u, n_channels)
                    times.append(t)
                    units.append(u.astype(np.int32))
                yield start, times, units
                bar.update(stop - start)


def read_shd_events(path: str | os.PathLike, progress: bool = False, desc: str | None = None):
    """Read every sample's spikes from an SHD file, checking each one.

    **Arguments:**

    - `path`: the file (checked first by :func:`check_shd_file`).
    - `progress`: show a progress bar; `desc` labels it.

    **Returns:** ``(times, units, labels, n_channels)``: ``N`` float32 arrays of seconds, ``N``
    int32 arrays of channels, ``[N]`` int32 labels and the file's channel count.

    **Raises:** :class:`SHDFormatError`, one line naming the file (and the sample), for a
    damaged file, times and units of different lengths, a NaN or negative time, or a unit
    outside the file's channels.
    """
    path = check_shd_file(path)
    times: list[np.ndarray] = []
    units: list[np.ndarray] = []
    for _, chunk_t, chunk_u in _chunks(path, progress, desc):
        times.extend(chunk_t)
        units.extend(chunk_u)
    with named_errors(path), h5py.File(path, "r") as f:
        labels = f["labels"][()].astype(np.int32)
        n_channels = file_channels(f, path)
    return times, units, labels, n_channels
