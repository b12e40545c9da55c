"""Writing a file so that it is either absent or complete: a temporary file, then a rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside `path`, then rename it over `path`.

    An error (or an interrupt) on the way removes the temporary file and leaves `path` as it was.
    The file gets the permissions a plain ``open`` would give (``0o666`` less the umask), not the
    owner-only ones of a temporary file.

    **Arguments:**

    - `path`: the file to create or replace; its folder must exist.
    - `write`: writes the whole content to the path it is given.

    **Returns:** `path`.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent
    )
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())  # on disk before the rename makes it visible
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """:func:`atomic_write` of `data`."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))
