"""``fit``: train a model on a spiking data set with a chosen gradient method."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from .._errors import ValidationError, ValidationTypeError
from ._batches import padded_batches, training_batches
from ._checkpoint import MODEL_FILE, MODEL_SPEC_FILE, save_model, write_json, write_jsonl
from ._config import TrainConfig
from ._method import parse_method
from ._metrics import peak_memory_bytes, temp_bytes
from ._network import network
from ._objective import evaluate_batch, loss_and_grad
from ._optimizer import make_optimizer
from ._sinks import MetricsSink

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"


def _make_train_step(optimizer, method):
    @eqx.filter_jit
    def step(model, opt_state, x, y):
        # Data stays uint8 on the host and in transfer; the cast happens inside the step.
        (loss, scores), grads = loss_and_grad(model, x.astype(jnp.float32), y, method)
        params = eqx.filter(model, eqx.is_inexact_array)
        # Optax's bias correction raises a Python float to an int32 step count, which strict
        # dtype promotion (a user's or the tests' setting) rejects; the model stays strict.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(grads, opt_state, params)
        model = eqx.apply_updates(model, updates)
        correct = jnp.sum((jnp.argmax(scores, axis=-1) == y).astype(jnp.int32))
        return model, opt_state, loss, correct

    return step


@eqx.filter_jit
def _eval_step(model, x, y, weight):
    return evaluate_batch(model, x.astype(jnp.float32), y, weight)


def _evaluate(model, split, size: int) -> tuple[float | None, float | None]:
    """Mean loss and accuracy over a split, in padded batches of `size`; None if it is empty."""
    n = len(split.y)
    if n == 0:
        return None, None
    loss_sum, correct = 0.0, 0.0
    for xb, yb, weight in padded_batches(split.x, split.y, size):
        loss_b, correct_b = _eval_step(model, xb, yb, weight)
        loss_sum += float(loss_b)
        correct += float(correct_b)
    return loss_sum / n, correct / n


def _check_dataset(dataset) -> None:
    for name in ("train", "val", "test"):
        split = getattr(dataset, name)
        if split.x.ndim != 3 or split.x.shape[2] != dataset.n_channels:
            raise ValidationError(
                f"{name} inputs must be [N, T, {dataset.n_channels}], got shape {split.x.shape}"
            )
        if len(split.y) and not (0 <= split.y.min() and split.y.max() < dataset.n_classes):
            raise ValidationError(
                f"{name} labels must lie in [0, {dataset.n_classes}), got "
                f"[{split.y.min()}, {split.y.max()}]"
            )
    if len(dataset.train.y) == 0:
        raise ValidationError("the training split is empty")


def _dataset_info(dataset) -> dict:
    return {
        "source": dataset.source,
        "n_classes": dataset.n_classes,
        "n_channels": dataset.n_channels,
        "n_bins": dataset.n_bins,
        "n_train": len(dataset.train.y),
        "n_val": len(dataset.val.y),
        "n_test": len(dataset.test.y),
    }


def _best(records: list[dict]) -> dict:
    scored = [r for r in records if r["val_accuracy"] is not None]
    if not scored:
        return {"best_epoch": None, "best_val_accuracy": None, "test_accuracy_at_best_val": None}
    # The first epoch with the highest validation accuracy: model selection never sees test.
    best = max(scored, key=lambda r: (r["val_accuracy"], -r["epoch"]))
    return {
        "best_epoch": best["epoch"],
        "best_val_accuracy": best["val_accuracy"],
        "test_accuracy_at_best_val": best["test_accuracy"],
    }


def fit(
    config: TrainConfig,
    dataset,
    out_dir: str | os.PathLike,
    progress: bool = True,
    *,
    model=None,
    sinks: Sequence[MetricsSink] = (),
) -> dict:
    """Train a network on `dataset` with ``config``'s method, saving everything under `out_dir`.

    The network is ``build_model(config.model, ...)``, a registered model or ``module:factory``
    completed with the leaky-integrator readout, unless `model` is given: then `model` is
    trained from its own weights (a :class:`snnplast.Sequential` ending in an
    :class:`snnplast.LI` as it is, any other cell as a hidden layer under the standard readout;
    see :func:`complete_model`), and ``config.model`` and ``config.hidden`` are not used.

    Each epoch shuffles the training split (deterministically from ``config.seed``), takes one
    Adam step per batch, then evaluates on the validation and test splits. At the end of every
    epoch the model and the metrics so far are written, so an interrupted run keeps its
    progress. The same config and data give the same metrics (timings aside).

    Files written (atomically) in `out_dir`:

    - ``metrics.jsonl``: one line per epoch: ``epoch, train_loss, train_accuracy, val_loss,
      val_accuracy, test_loss, test_accuracy, seconds, train_seconds``.
    - ``summary.json``: final ``val_accuracy`` and ``test_accuracy``, the epoch with the best
      validation accuracy, ``wall_seconds``, ``compile_seconds``, ``seconds_per_epoch``
      (training only), ``peak_memory_bytes`` (process peak RSS), ``step_temp_bytes`` (XLA's
      scratch memory for one training step, None if unknown), the data set and the config.
    - ``model.eqx`` (the final weights) and ``model.json`` (what rebuilds the model);
      :func:`load_model` reads them back.

    **Arguments:**

    - `config`: a :class:`TrainConfig`.
    - `dataset`: a ``snnplast.data.SpikeDataset`` (or any object with its fields).
    - `out_dir`: folder for the files; created if missing, files in it overwritten.
    - `progress`: show a progress bar per epoch with the running loss and accuracy.
    - `model`: a :class:`snnplast.Cell` to train instead of ``config.model``.
    - `sinks`: :class:`MetricsSink` objects that also get each epoch's record (such as
      :class:`TensorBoardSink`), right after ``metrics.jsonl`` is written; closing them is the
      caller's (one sink may follow several runs).

    **Returns:** the summary, as written to ``summary.json``.

    **Raises:** `ValueError` for data that does not fit; `FloatingPointError` when the loss
    becomes non-finite (the files keep the last complete epoch).
    """
    if not isinstance(config, TrainConfig):
        raise ValidationTypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    _check_dataset(dataset)
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    method = parse_method(config.method, config.lam)
    model, spec = network(
        config.model if model is None else model,
        config.seed, config.hidden, dataset.n_channels, dataset.n_classes,
    )  # fmt: skip
    recorded = config.to_dict()
    if spec["model"] is None:
        # What was trained is the object, not config.model: the record must not claim otherwise.
        recorded.update(model=f"object:{spec['class']}", hidden=None)
    rng = np.random.default_rng(config.seed)
    train = dataset.train
    batch = min(config.batch, len(train.y))
    n_steps = len(train.y) // batch
    optimizer = make_optimizer(config.lr, config.schedule, config.epochs * n_steps)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    # One evaluation shape for both splits, so the evaluation compiles once.
    eval_size = min(config.eval_batch, max(len(dataset.val.y), len(dataset.test.y), 1))

    # Compiled ahead of time: the compile is timed apart from the epochs, and the same
    # executable reports its scratch memory.
    compile_start = time.perf_counter()
    step = (
        _make_train_step(optimizer, method)
        .lower(model, opt_state, train.x[:batch], train.y[:batch])
        .compile()
    )
    compile_seconds = time.perf_counter() - compile_start
    step_temp_bytes = temp_bytes(step)

    params = eqx.filter(model, eqx.is_inexact_array)
    n_parameters = sum(a.size for a in jax.tree_util.tree_leaves(params))
    records: list[dict] = []
    summary: dict = {}
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(
            total=n_steps,
            desc=f"epoch {epoch}/{config.epochs}",
            disable=not progress,
            dynamic_ncols=True,
        )
        with bar:
            for index, x, y in training_batches(train, batch, config.channel_shift, rng):
                model, opt_state, loss, n_correct = step(model, opt_state, x, y)
                loss = float(loss)
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"training diverged in epoch {epoch}: batch loss {loss}; "
                        f"try a smaller learning rate than {config.lr}"
                    )
                loss_sum += loss * len(index)
                correct += int(n_correct)
                seen += len(index)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
            train_seconds = time.perf_counter() - epoch_start
            val_loss, val_accuracy = _evaluate(model, dataset.val, eval_size)
            test_loss, test_accuracy = _evaluate(model, dataset.test, eval_size)
            if val_accuracy is not None:
                bar.set_postfix(
                    loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                    val_acc=f"{val_accuracy:.3f}",
                )  # fmt: skip
        records.append(
            {
                "epoch": epoch,
                "train_loss": loss_sum / seen,
                "train_accuracy": correct / seen,
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
                "test_loss": test_loss,
                "test_accuracy": test_accuracy,
                "seconds": time.perf_counter() - epoch_start,
                "train_seconds": train_seconds,
            }
        )
        save_model(out_dir, model, spec)
        write_jsonl(out_dir / METRICS_FILE, records)
        for sink in sinks:
            sink.write(records[-1])
        summary = {
            "complete": epoch == config.epochs,
            "epochs_completed": epoch,
            "val_accuracy": val_accuracy,
            "test_accuracy": test_accuracy,
            "train_accuracy": records[-1]["train_accuracy"],
            **_best(records),
            "wall_seconds": time.perf_counter() - start,
            "compile_seconds": compile_seconds,
            "seconds_per_epoch": float(np.mean([r["train_seconds"] for r in records])),
            "peak_memory_bytes": peak_memory_bytes(),
            "step_temp_bytes": step_temp_bytes,
            "batch_used": batch,
            "steps_per_epoch": n_steps,
            "n_parameters": int(n_parameters),
            "model": spec,
            "dataset": _dataset_info(dataset),
            "config": recorded,
            "files": [METRICS_FILE, SUMMARY_FILE, MODEL_FILE, MODEL_SPEC_FILE],
            "jax_version": jax.__version__,
            "device": str(jax.devices()[0].device_kind),
        }
        write_json(out_dir / SUMMARY_FILE, summary)
    return summary
