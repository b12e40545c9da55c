"""SHD's files as they are downloaded: ``shd_train.h5.zip`` (zenkelab.org, tonic) or
``shd_train.h5.gz`` (the original release), unpacked once into the cache.

A folder holding only the archive is as good as one holding the ``.h5`` file: the archive is
streamed into ``<cache>/unpacked/<key>/`` (keyed by the archive's path, size and mtime, so a
replaced archive is unpacked again), written atomically, never into the user's folder.
"""

from __future__ import annotations

import gzip
import os
import shutil
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from ..._atomic import atomic_write
from .._cache import cache_key, cache_root, file_fingerprint
from .file import SHDFormatError, _one_line

ARCHIVE_SUFFIXES = (".zip", ".gz")

_CHUNK = 1 << 20


def find_archive(folders: list[Path], name: str) -> Path | None:
    """The first ``<folder>/<name>.zip`` or ``.gz`` that is a non-empty file, or None.

    tonic's own layout keeps an empty ``<name>.zip`` as a marker beside the ``.h5``; empty files
    are therefore never taken for archives.
    """
    for folder in folders:
        for suffix in ARCHIVE_SUFFIXES:
            path = folder / f"{name}{suffix}"
            if path.is_file() and path.stat().st_size > 0:
                return path
    return None


def _zip_member(archive: zipfile.ZipFile, path: Path, name: str) -> zipfile.ZipInfo:
    files = [m for m in archive.infolist() if not m.is_dir()]
    named = [m for m in files if Path(m.filename).name == name]
    h5 = [m for m in files if m.filename.lower().endswith((".h5", ".hdf5"))]
    if named or len(h5) == 1:
        return (named or h5)[0]
    raise SHDFormatError(f"{path}: holds no {name} (found {[m.filename for m in files][:5]})")


def _copy(src, dst, total: int | None, desc: str, progress: bool) -> None:
    with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
        while chunk := src.read(_CHUNK):
            dst.write(chunk)
            bar.update(len(chunk))


def unpacked(
    archive: str | os.PathLike,
    name: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    progress: bool = True,
) -> Path:
    """`archive` (a ``.zip`` or ``.gz`` of the SHD file `name`) unpacked into the cache.

    **Arguments:**

    - `archive`: the downloaded ``shd_train.h5.zip`` / ``.gz`` (or the test split's).
    - `name`: the file it holds (``shd_train.h5``); in a zip, the member of that name, or its
      only ``.h5`` member.
    - `cache_dir`: cache root (default ``$SNNPLAST_CACHE`` or ``~/.cache/snnplast``).
    - `progress`: show a progress bar while unpacking.

    **Returns:** the unpacked file's path (the same path on later calls, nothing redone).

    **Raises:** :class:`SHDFormatError` (one line, naming the archive) when it is not a readable
    archive of that file; nothing is left behind then.
    """
    archive = Path(archive).expanduser()
    key = cache_key(source=file_fingerprint(archive))
    out = cache_root(cache_dir) / "unpacked" / key / name
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    desc = f"unpacking {archive.name}"

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as dst:
            if archive.suffix == ".zip":
                with zipfile.ZipFile(archive) as z:
                    member = _zip_member(z, archive, name)
                    with z.open(member) as src:
                        _copy(src, dst, member.file_size, desc, progress)
            else:
                with gzip.open(archive, "rb") as src:
                    _copy(src, dst, None, desc, progress)

    try:
        atomic_write(out, write)
    except (zipfile.BadZipFile, gzip.BadGzipFile, EOFError, OSError, zipfile.LargeZipFile) as e:
        shutil.rmtree(out.parent, ignore_errors=True)
        kind = "zip" if archive.suffix == ".zip" else "gzip"
        raise SHDFormatError(
            f"{archive}: not a readable {kind} archive of {name} ({_one_line(e)})"
        ) from None
    except SHDFormatError:
        shutil.rmtree(out.parent, ignore_errors=True)
        raise
    return out
