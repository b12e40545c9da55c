"""``compare``: train several gradient methods under one budget and set their results side by side."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import jax
from tqdm.auto import tqdm

from .._atomic import atomic_write_bytes
from .._errors import ValidationTypeError
from ._agreement import first_batch, gradient_agreement
from ._checkpoint import output_folder, write_json
from ._config import TrainConfig
from ._method import REFERENCE
from ._method_list import folder_name, parse_methods, run_config
from ._network import describe
from ._report import markdown, one_line, plot
from ._trainer import METRICS_FILE, SUMMARY_FILE, _check_dataset, _dataset_info, fit

COMPARE_MD = "compare.md"
COMPARE_JSON = "compare.json"
COMPARE_PNG = "compare.png"
# What each run's metrics.jsonl contributes to the curves.
_CURVE_KEYS = (
    "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
    "test_accuracy", "train_seconds",
)  # fmt: skip
# What each run's summary.json contributes to the table.
_SUMMARY_KEYS = (
    "test_accuracy", "val_accuracy", "best_val_accuracy", "best_epoch",
    "test_accuracy_at_best_val", "seconds_per_epoch", "compile_seconds", "step_temp_bytes",
    "peak_memory_bytes", "epochs_completed",
)  # fmt: skip


def _read_curves(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [{key: r.get(key) for key in _CURVE_KEYS} for r in records]


def _train_one(config: TrainConfig, dataset, folder: Path, progress: bool, model) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    # A previous run's files in this folder must not pass for this run's if it fails early.
    for name in (METRICS_FILE, SUMMARY_FILE):
        (folder / name).unlink(missing_ok=True)
    error = None
    summary: dict = {}
    try:
        summary = fit(config, dataset, folder, progress=progress, model=model)
    except FloatingPointError as e:
        error = str(e)
        # fit left the summary of the last complete epoch, if there was one.
        if (folder / SUMMARY_FILE).is_file():
            summary = json.loads((folder / SUMMARY_FILE).read_text())
    curves = _read_curves(folder / METRICS_FILE)
    return {
        "trained": True,
        "status": "diverged" if error else "complete",
        "error": error,
        **{key: summary.get(key) for key in _SUMMARY_KEYS},
        "curves": curves,
    }


def compare(
    methods: str | Sequence[str],
    config: TrainConfig,
    dataset,
    out_dir: str | os.PathLike,
    progress: bool = True,
    *,
    command: str | None = None,
    model=None,
) -> dict:
    """Train each of `methods` with the same settings and data, and write a comparison.

    Every method runs :func:`fit` with `config` (same seed, so the same initial weights and batch
    order; same epochs, batch and learning rate), each in its own sub-folder of `out_dir`. BPTT is
    the reference for the gradient cosine: when it is not among `methods` its first-step gradient
    is still computed (one gradient), but it is not trained. A run that diverges is reported as
    such and the others go on.

    Files written (atomically) in `out_dir`:

    - ``compare.md``: one table row per method: final test accuracy, best validation accuracy
      (and its epoch), training seconds per epoch, compile seconds, the compiled step's scratch
      memory, the process's peak RSS, and the cosine of the first-step gradient with BPTT's
      (see :func:`gradient_agreement`); then notes and the command line.
    - ``compare.json``: the same numbers, each run's per-epoch curves (from its
      ``metrics.jsonl``), the gradient norms, the shared config and the data set.
    - ``compare.png``: validation accuracy and training loss per epoch, and test accuracy.
    - ``<method>/``: each run's own files (see :func:`fit`); ``random-k:4`` goes to
      ``random-k-4/``.

    **Arguments:**

    - `methods`: method texts (see :func:`parse_method`) or one comma-separated string.
    - `config`: the settings the runs share; its `method` is replaced by each method in turn and
      its `lam` applies to the online methods (``bptt`` always runs with 1.0).
    - `dataset`: a ``snnplast.data.SpikeDataset``.
    - `out_dir`: folder for the files; created if missing, files in it overwritten.
    - `progress`: progress bars (one per method, and fit's per epoch) and a line per result.
    - `command`: the command line to record; by default the Python call is described instead.
    - `model`: a :class:`snnplast.Cell` that every method trains from the same weights, instead
      of ``config.model`` (the rule of :func:`fit`: a hidden layer gets the standard readout).

    **Returns:** what ``compare.json`` holds.

    **Raises:** `ValueError`/`TypeError` for bad methods, settings or data (before training).
    """
    if not isinstance(config, TrainConfig):
        raise ValidationTypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    methods = parse_methods(methods, config.lam)
    runs = {m: run_config(config, m) for m in methods}
    _check_dataset(dataset)
    out_dir = output_folder(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    agreement = gradient_agreement(config, dataset, methods, model=model)
    results = []
    bar = tqdm(methods, desc="compare", unit="method", disable=not progress, dynamic_ncols=True)
    for method in bar:
        bar.set_description(f"compare: {method}")
        folder = folder_name(method)
        run = _train_one(runs[method], dataset, out_dir / folder, progress, model)
        results.append({"method": method, "dir": folder, **run, **agreement[method]})
        if progress:
            tqdm.write(one_line(results[-1]))
    if REFERENCE not in methods:
        results.append(
            {
                "method": REFERENCE,
                "dir": None,
                "trained": False,
                "status": "reference",
                "error": None,
                "curves": [],
                **agreement[REFERENCE],
            }
        )

    shared = config.to_dict()
    del shared["method"]
    shared["n_bins"] = int(dataset.n_bins)  # what the runs trained on, as fit records it
    if model is not None:
        shared.update(model=f"object:{describe(model)}", hidden=None)
    if command is None:
        command = f"snnplast.train.compare({list(methods)!r}, config, dataset, {str(out_dir)!r})"
    report = {
        "command": command,
        "methods": list(methods),
        "reference": REFERENCE,
        "config": shared,
        "dataset": _dataset_info(dataset),
        "gradient_batch": {
            "what": "the first batch fit trains on (epoch 1, step 1, channel-shifted as fit "
            "shifts it), at the initial weights",
            "indices": [int(i) for i in first_batch(config, dataset.train)[0]],
        },
        "runs": results,
        "files": [COMPARE_MD, COMPARE_JSON, COMPARE_PNG],
        "jax_version": jax.__version__,
        "device": str(jax.devices()[0].device_kind),
    }
    write_json(out_dir / COMPARE_JSON, report)
    atomic_write_bytes(out_dir / COMPARE_MD, markdown(report).encode())
    atomic_write_bytes(out_dir / COMPARE_PNG, plot(report))
    return report
