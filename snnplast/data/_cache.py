"""Where derived data lives on disk, how it is keyed, and how it is written (atomically)."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .._atomic import atomic_write

CACHE_ENV = "SNNPLAST_CACHE"
DATA_ENV = "SNNPLAST_DATA"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: `cache_dir`, else ``$SNNPLAST_CACHE``, else ``~/.cache/snnplast``."""
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "snnplast"
    return Path(cache_dir).expanduser()


def shd_data_dir(name: str = "shd") -> Path:
    """Where ``load_dataset("shd")`` looks for ``shd_train.h5`` / ``shd_test.h5`` (and
    ``load_dataset("ssc")`` for SSC's files, with `name` ``"ssc"``).

    ``$SNNPLAST_DATA/<name>`` if ``$SNNPLAST_DATA`` is set, else ``~/.cache/snnplast/<name>``.
    """
    base = os.environ.get(DATA_ENV) or Path.home() / ".cache" / "snnplast"
    return Path(base).expanduser() / name


def file_fingerprint(path: str | os.PathLike) -> dict:
    """What identifies a source file's version cheaply: its resolved path, size and mtime."""
    path = Path(path).resolve()
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def cache_key(**parts) -> str:
    """A short stable hash of JSON-serialisable `parts` (sorted by name)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def save_npz_atomic(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Write ``np.savez(path, **arrays)`` so that `path` is either absent or complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, write)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """All arrays of an ``.npz`` file, or None when it is absent or unreadable (then rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
