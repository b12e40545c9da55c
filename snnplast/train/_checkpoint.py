"""Files of a run, written atomically: a crash leaves the previous complete file, never half of one."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import equinox as eqx

from .._atomic import atomic_write_bytes
from ._network import skeleton

MODEL_FILE = "model.eqx"
MODEL_SPEC_FILE = "model.json"


def write_json(path: str | os.PathLike, value) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=2) + "\n").encode())


def write_jsonl(path: str | os.PathLike, records: list[dict]) -> None:
    # Rewritten whole each time: appending in place could leave a torn last line.
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in records).encode())


def save_model(out_dir: str | os.PathLike, model, spec: dict) -> None:
    """Save `model`'s leaves and the `spec` that rebuilds its shape (see ``_models.network``)."""
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, model)
    atomic_write_bytes(Path(out_dir) / MODEL_FILE, buffer.getvalue())
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
    out_dir = Path(out_dir)
    for name in (MODEL_FILE, MODEL_SPEC_FILE):
        if not (out_dir / name).is_file():
            raise FileNotFoundError(f"{out_dir / name} not found: is {out_dir} a training run?")
    spec = json.loads((out_dir / MODEL_SPEC_FILE).read_text())
    return eqx.tree_deserialise_leaves(out_dir / MODEL_FILE, skeleton(spec, like))
