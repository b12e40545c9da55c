"""Files of a run, written atomically: a crash leaves the previous complete file, never half of one.

Besides the final ``model.eqx`` a run keeps ``checkpoint.eqx``, everything needed to continue it
exactly where it stopped: the model, the optimiser state, the host-side state of the loop (the
NumPy generator behind shuffling and channel shifts, the position in the epoch, the running
sums, the metrics so far) and the config. It is one file, so that replacing it is one atomic
rename: a kill at any instant leaves either the previous checkpoint or the new one, whole.

Layout of ``checkpoint.eqx``: the magic line ``snnplast-checkpoint 1``, the length of a JSON
header as 8 little-endian bytes, the header (UTF-8 JSON: the loop state and the config), then
the array leaves as Equinox writes them (``eqx.tree_serialise_leaves``: NumPy's ``.npy``
format, no pickle). Reading needs a skeleton of the same structure, which the config rebuilds.
"""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._atomic import atomic_write_bytes
from .._errors import ValidationError
from ._network import skeleton

MODEL_FILE = "model.eqx"
MODEL_SPEC_FILE = "model.json"
CHECKPOINT_FILE = "checkpoint.eqx"
_MAGIC = b"snnplast-checkpoint 1\n"
_LENGTH = struct.Struct("<Q")


class CheckpointError(ValueError):
    """A folder holds no readable checkpoint of a run (missing, damaged, or of another run)."""


def output_folder(out_dir: str | os.PathLike, name: str = "out_dir") -> Path:
    """`out_dir` as a path with ``~`` expanded, checked before any work is done for it.

    **Arguments:**

    - `out_dir`: the folder files are to be written into (made later if missing).
    - `name`: what the caller calls it, for the message (``--out`` on the command line).

    **Returns:** the path.

    **Raises:** :class:`ValidationError` when `out_dir` exists and is not a folder, or is
    empty (``Path`` would read it as the working folder).
    """
    if not str(out_dir).strip():
        raise ValidationError(f"{name} {str(out_dir)!r}: empty; name a folder ('.' for the "
                              "working folder)")
    path = Path(out_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise ValidationError(f"{name} {path} exists and is not a folder; pass a folder")
    return path


def write_json(path: str | os.PathLike, value) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=2) + "\n").encode())


def write_jsonl(path: str | os.PathLike, records: list[dict]) -> None:
    # Rewritten whole each time: appending in place could leave a torn last line.
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in records).encode())


def to_host(tree):
    """`tree` with every array leaf as a NumPy array.

    Parameters are replicated over the devices, so each process holds them whole in its first
    local shard; reading that shard works on one host and on many (where the global array is
    not addressable from one process).
    """

    def host(leaf):
        if isinstance(leaf, jax.Array):
            return np.asarray(leaf.addressable_data(0))
        return leaf

    return jax.tree_util.tree_map(host, tree)


def _leaves_bytes(tree) -> bytes:
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, to_host(tree))
    return buffer.getvalue()


def save_model(out_dir: str | os.PathLike, model, spec: dict) -> None:
    """Save `model`'s leaves and the `spec` (``build_model``'s arguments) that rebuilds it."""
    atomic_write_bytes(Path(out_dir) / MODEL_FILE, _leaves_bytes(model))
    write_json(Path(out_dir) / MODEL_SPEC_FILE, spec)


def load_model(out_dir: str | os.PathLike, *, like=None):
    """Load the model saved by a training run in `out_dir`.

    **Arguments:**

    - `out_dir`: the run's folder, holding ``model.eqx`` and ``model.json``.
    - `like`: for a run that was given a model object (``fit(..., model=cell)``), a model of the
      same kind and shape (the object itself will do; its weights are not used). Runs of a
      registered model or ``module:factory`` are rebuilt from ``model.json`` alone.

    **Returns:** the :class:`snnplast.Sequential` with the saved weights.
    """
    out_dir = Path(out_dir).expanduser()
    for name in (MODEL_FILE, MODEL_SPEC_FILE):
        if not (out_dir / name).is_file():
            raise FileNotFoundError(f"{out_dir / name} not found: is {out_dir} a training run?")
    spec = json.loads((out_dir / MODEL_SPEC_FILE).read_text())
    try:
        return eqx.tree_deserialise_leaves(
            out_dir / MODEL_FILE, skeleton(spec, like), filter_spec=_in_session_precision
        )
    except RuntimeError as e:  # Equinox's word for a leaf of another shape
        raise ValidationError(
            f"{out_dir / MODEL_FILE} does not fit the model it is read over: {e}"
            + (" (pass like= a model of the trained shape)" if like is not None else "")
        ) from None


def _in_session_precision(f, like_leaf):
    """A saved floating-point array in the dtype the skeleton has in this session: a float32
    run read where ``jax_enable_x64`` makes new models float64 becomes float64 (exactly)."""
    loaded = eqx.default_deserialise_filter_spec(f, like_leaf)
    if (isinstance(like_leaf, jax.Array) and jnp.issubdtype(like_leaf.dtype, jnp.floating)
            and jnp.issubdtype(loaded.dtype, jnp.floating)):
        return loaded.astype(like_leaf.dtype)
    return loaded


def save_checkpoint(out_dir: str | os.PathLike, tree, header: dict) -> Path:
    """Write ``checkpoint.eqx`` in `out_dir` atomically.

    **Arguments:**

    - `out_dir`: the run's folder (must exist).
    - `tree`: the arrays to keep (a pytree: model and optimiser state); read back with a
      skeleton of the same structure.
    - `header`: JSON-serialisable state of the loop.

    **Returns:** the checkpoint's path.
    """
    head = json.dumps(header).encode()
    data = b"".join((_MAGIC, _LENGTH.pack(len(head)), head, _leaves_bytes(tree)))
    return atomic_write_bytes(Path(out_dir) / CHECKPOINT_FILE, data)


def _split(path: Path) -> tuple[dict, bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(
            f"{path.parent} is not a training run: no {CHECKPOINT_FILE} in it"
        ) from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror})") from None
    start = len(_MAGIC) + _LENGTH.size
    if not data.startswith(_MAGIC) or len(data) < start:
        raise CheckpointError(f"{path}: not a snnplast checkpoint")
    (length,) = _LENGTH.unpack(data[len(_MAGIC) : start])
    try:
        header = json.loads(data[start : start + length].decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: damaged checkpoint header") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: damaged checkpoint header")
    return header, data[start + length :]


def read_checkpoint_header(out_dir: str | os.PathLike) -> dict:
    """The JSON header of `out_dir`'s checkpoint, without reading its arrays.

    **Raises:** :class:`CheckpointError` (one line, naming the folder) when there is none.
    """
    out_dir = Path(out_dir).expanduser()
    if not out_dir.is_dir():
        what = "a file, not a folder" if out_dir.exists() else "no such folder"
        raise CheckpointError(f"{out_dir} is not a training run: {what}")
    return _split(out_dir / CHECKPOINT_FILE)[0]


def load_checkpoint(out_dir: str | os.PathLike, skeleton) -> tuple[dict, object]:
    """Read ``checkpoint.eqx`` from `out_dir`.

    **Arguments:**

    - `out_dir`: the run's folder.
    - `skeleton`: a pytree with the structure, shapes and dtypes of the saved one.

    **Returns:** ``(header, tree)``.

    **Raises:** :class:`CheckpointError` naming the file when it is missing or does not fit.
    """
    path = Path(out_dir) / CHECKPOINT_FILE
    header, rest = _split(path)
    try:
        tree = eqx.tree_deserialise_leaves(io.BytesIO(rest), skeleton)
    except (ValueError, RuntimeError, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: arrays do not fit this run ({e})") from None
    return header, tree
