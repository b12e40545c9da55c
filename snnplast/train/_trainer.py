"""``fit``: train a model on a spiking data set with a chosen gradient method."""

from __future__ import annotations

import hashlib
import json
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
from ._checkpoint import (
    CHECKPOINT_FILE,
    MODEL_FILE,
    MODEL_SPEC_FILE,
    CheckpointError,
    load_checkpoint,
    output_folder,
    save_checkpoint,
    save_model,
    to_host,
    write_json,
    write_jsonl,
)
from ._config import TrainConfig
from ._frozen import hold_static, rebuild
from ._guard import DivergenceError, describe, finite_flags, gradient_leaf_names, keep_if
from ._method import parse_method
from ._metrics import peak_memory_bytes, temp_bytes
from ._network import network
from ._objective import evaluate_batch, loss_and_grad
from ._optimizer import make_optimizer
from ._resume import RunState, check_header
from ._sharding import DataParallel, initialize_distributed, is_writer
from ._sinks import MetricsSink

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"


def _make_train_step(optimizer, method, replicated, block=None):
    """The training step ``(model, opt_state, x, y) -> (model, opt_state, loss, correct,
    flags)``, jitted over the model's trainable arrays only (:class:`_TrainStep`)."""

    def constrain(tree):
        # Parameters and optimiser state stay whole on every device: the gradient is summed
        # over the batch shards before the update, so every device applies the same one.
        arrays, static = eqx.partition(tree, eqx.is_array)
        arrays = jax.tree_util.tree_map(
            lambda a: jax.lax.with_sharding_constraint(a, replicated), arrays
        )
        return eqx.combine(arrays, static)

    @eqx.filter_jit
    def step(params, held, opt_state, x, y):
        model = rebuild(params, held)
        # Data stays uint8 on the host and in transfer; the cast happens inside the step.
        (loss, scores), grads = loss_and_grad(model, x.astype(jnp.float32), y, method, block)
        # Optax's bias correction raises a Python float to an int32 step count, which strict
        # dtype promotion (a user's or the tests' setting) rejects; the model stays strict.
        with jax.numpy_dtype_promotion("standard"):
            updates, new_opt_state = optimizer.update(grads, opt_state, params)
        new_params = eqx.apply_updates(params, updates)
        # The divergence guard: a step with a non-finite loss or gradient changes nothing.
        flags = finite_flags(loss, grads)
        ok = jnp.all(flags)
        params = constrain(keep_if(ok, new_params, params))
        opt_state = constrain(keep_if(ok, new_opt_state, opt_state))
        # argmax is int64 where x64 is on, the labels int32: compared in the labels' dtype
        correct = jnp.sum((jnp.argmax(scores, axis=-1).astype(y.dtype) == y).astype(jnp.int32))
        return params, opt_state, loss, correct, flags

    return _TrainStep(step)


class _TrainStep:
    """A jitted step of ``(params, held, ...)`` called on the whole model.

    The model is split by :func:`hold_static`: a mask or an index array reaches the trace
    engine with its values, not as a tracer. Nothing but the trainable arrays changes during
    training, so the step returns the model with its other leaves as they came in.
    """

    def __init__(self, jitted, compiled=None, held=None):
        self.jitted, self.compiled, self.held = jitted, compiled, held

    def compile(self, model, opt_state, x, y) -> _TrainStep:
        """Compiled ahead of time for these shapes and this model's held arrays."""
        params, held = hold_static(model)
        return _TrainStep(self.jitted, self.jitted.lower(params, held, opt_state, x, y).compile(),
                          held)

    def __call__(self, model, opt_state, x, y):
        params, rest = eqx.partition(model, eqx.is_inexact_array)
        if self.compiled is None:
            params, held = hold_static(model)
            out = self.jitted(params, held, opt_state, x, y)
        else:
            out = self.compiled(params, self.held, opt_state, x, y)
        return eqx.combine(out[0], rest), *out[1:]


@eqx.filter_jit
def _eval_step(model, x, y, weight):
    return evaluate_batch(model, x.astype(jnp.float32), y, weight)


def _evaluate(model, split, size: int, parallel: DataParallel) -> tuple[float | None, float | None]:
    """Mean loss and accuracy over a split, in padded batches of `size`; None if it is empty."""
    n = len(split.y)
    if n == 0:
        return None, None
    loss_sum, correct = 0.0, 0.0
    for xb, yb, weight in padded_batches(split.x, split.y, size):
        loss_b, correct_b = _eval_step(
            model, parallel.shard(xb), parallel.shard(yb), parallel.shard(weight)
        )
        loss_sum += float(to_host(loss_b))
        correct += float(to_host(correct_b))
    return loss_sum / n, correct / n


_DATASET_FIELDS = ("train", "val", "test", "n_classes", "n_channels", "n_bins")


def _check_dataset(dataset) -> None:
    missing = [name for name in _DATASET_FIELDS if not hasattr(dataset, name)]
    if missing:
        # A name, a folder or (x, y) arrays are what people try first: say what to pass.
        got = repr(dataset) if isinstance(dataset, str | os.PathLike) else type(dataset).__name__
        raise ValidationTypeError(
            f"dataset must be a snnplast.data.SpikeDataset, what load_dataset returns (or an "
            f"object with its fields {', '.join(_DATASET_FIELDS)}), got {got} (no "
            f"{', '.join(missing)}); for a name or a folder, pass load_dataset(it, n_bins=...)"
        )
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
        # By name: `evaluate` lines up another data set's labels with the model's classes.
        "class_names": [str(name) for name in dataset.class_names],
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


def _training_digest(train) -> str:
    """A hash of the training split's arrays: a run continues only on the data it started on."""
    digest = hashlib.sha256()
    for array in (train.x, train.y):
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:16]


def _check_every(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"checkpoint_every must be an integer >= 1 (or None), got {value!r}")
    return int(value)


def _resume_state(out_dir: Path, config: TrainConfig, data_info: dict, skeleton):
    """The checkpoint of `out_dir` checked against this run: ``(state, (model, opt_state))``."""
    header, tree = load_checkpoint(out_dir, skeleton)
    check_header(header, out_dir / CHECKPOINT_FILE)
    saved = header["config"]
    now = config.to_dict()
    differ = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if differ:
        raise CheckpointError(
            f"{out_dir}: the run was started with other settings ({', '.join(differ)} differ); "
            "continue it with its own config"
        )
    before = header["dataset"]
    # Runs started before the class names were recorded are checked on everything else.
    old = {"source"} | ({"class_names"} - set(before))
    mismatch = sorted(k for k in data_info if k not in old and before.get(k) != data_info[k])
    if mismatch:
        raise CheckpointError(
            f"{out_dir}: the run was started on other data ({', '.join(mismatch)} differ); "
            f"it trained on {header['dataset'].get('source')}"
        )
    return RunState.from_header(header), tree


def fit(
    config: TrainConfig,
    dataset,
    out_dir: str | os.PathLike,
    progress: bool = True,
    *,
    model=None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    devices: int | None = None,
    sinks: Sequence[MetricsSink] = (),
) -> dict:
    """Train a network on `dataset` with ``config``'s method, saving everything under `out_dir`.

    The network is ``build_model(config.model, ...)``, a registered model or ``module:factory``
    completed with the leaky-integrator readout, unless `model` is given: then `model` is
    trained from its own weights (a :class:`snnplast.Sequential` ending in an
    :class:`snnplast.LI` as it is, any other cell as a hidden layer under the standard readout;
    see :func:`complete_model`), and ``config.model`` and ``config.hidden`` are not used.

    Each epoch shuffles the training split (deterministically from ``config.seed``), takes one
    Adam step per batch, then evaluates on the validation and test splits. The batch is split
    over `devices` devices (data parallelism, parameters replicated; see
    :class:`DataParallel`). The same config and data give the same metrics (timings
    aside), and a run continued with ``resume=True`` after an interruption ends with the very
    same parameters, bit for bit, as one that was never interrupted.

    A step whose loss or gradient is not finite changes nothing; with ``config.on_nan ==
    "stop"`` the run then raises :class:`DivergenceError` naming the epoch, step, method and
    first offending parameter, and the checkpoint on disk stays the last good one; with
    ``"skip"`` the batch is skipped and counted (``nan_skips`` in the summary).

    Files written (atomically) in `out_dir`, which is created once the step has compiled:

    - ``checkpoint.eqx``: everything needed to continue (model, optimiser state, the data
      order's generator, the position in the epoch, the metrics so far, the config); written at
      the start, at the end of every epoch and every `checkpoint_every` steps.
    - ``metrics.jsonl``: one line per completed epoch: ``epoch, train_loss, train_accuracy,
      val_loss, val_accuracy, test_loss, test_accuracy, skipped_batches, seconds,
      train_seconds``.
    - ``summary.json``: final ``val_accuracy`` and ``test_accuracy``, the epoch with the best
      validation accuracy, ``wall_seconds``, ``compile_seconds``, ``seconds_per_epoch``
      (training only), ``batch_used`` (``config.batch``, or the training split's size when
      that is smaller), ``peak_memory_bytes`` (process peak RSS), ``step_temp_bytes`` (XLA's
      scratch memory for one training step, None if unknown), ``nan_skips``, ``devices``,
      ``resumes``, the data set and the config.
    - ``model.eqx`` (the weights after the last epoch) and ``model.json`` (what rebuilds the
      model); :func:`load_model` reads them back.

    **Arguments:**

    - `config`: a :class:`TrainConfig`.
    - `dataset`: a ``snnplast.data.SpikeDataset`` (or any object with its fields).
    - `out_dir`: folder for the files (``~`` is the home folder); a fresh run overwrites files
      in it; an existing file there is refused.
    - `progress`: show a progress bar per epoch with the running loss and accuracy.
    - `model`: a :class:`snnplast.Cell` to train instead of ``config.model``.
    - `resume`: continue the run whose checkpoint is in `out_dir` (same config and data);
      a finished run is returned as it is.
    - `checkpoint_every`: also checkpoint every this many optimiser steps (None: per epoch).
    - `devices`: how many devices to split each batch over (None: all; the batch must be a
      multiple of it).
    - `sinks`: :class:`MetricsSink` objects that also get each epoch's record (such as
      :class:`TensorBoardSink`), right after ``metrics.jsonl`` is written; closing them is the
      caller's (one sink may follow several runs).

    **Returns:** the summary, as written to ``summary.json``.

    **Raises:** `ValueError` for data or settings that do not fit (:class:`CheckpointError`
    for a folder that cannot be continued); :class:`DivergenceError` (a
    `FloatingPointError`) when a value becomes non-finite under ``on_nan="stop"``.
    """
    if not isinstance(config, TrainConfig):
        raise ValidationTypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    _check_dataset(dataset)
    checkpoint_every = _check_every(checkpoint_every)
    start = time.perf_counter()
    out_dir = output_folder(out_dir)
    initialize_distributed()
    parallel = DataParallel(devices)

    method = parse_method(config.method, config.lam)
    model, spec = network(
        config.model if model is None else model,
        config.seed, config.hidden, dataset.n_channels, dataset.n_classes,
    )  # fmt: skip
    recorded = config.to_dict()
    # `snnplast evaluate` bins other data as the record says: it must be the data's binning,
    # whatever the config was left at (TrainConfig's n_bins is only recorded).
    recorded["n_bins"] = int(dataset.n_bins)
    if spec["model"] is None:
        # What was trained is the object, not config.model: the record must not claim otherwise.
        recorded.update(model=f"object:{spec['class']}", hidden=None)
    train = dataset.train
    batch = min(config.batch, len(train.y))
    parallel.check_batch(batch)
    n_steps = len(train.y) // batch
    optimizer = make_optimizer(config.lr, config.schedule, config.epochs * n_steps)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    data_info = {**_dataset_info(dataset), "train_digest": _training_digest(train)}

    first_rng = np.random.default_rng(config.seed).bit_generator.state
    state = RunState(epoch=1, step=0, epoch_rng=first_rng)
    if resume:
        state, (model, opt_state) = _resume_state(out_dir, config, data_info, (model, opt_state))
        if state.epoch > config.epochs and (out_dir / SUMMARY_FILE).is_file():
            return json.loads((out_dir / SUMMARY_FILE).read_text())
        state.resumes += 1
    rng = np.random.default_rng()
    rng.bit_generator.state = state.epoch_rng

    # One evaluation shape for both splits, so the evaluation compiles once; a whole number of
    # rows per device.
    eval_size = min(config.eval_batch, max(len(dataset.val.y), len(dataset.test.y), 1))
    eval_size = -(-eval_size // parallel.size) * parallel.size
    model, opt_state = parallel.replicate(model), parallel.replicate(opt_state)

    # Compiled ahead of time: the compile is timed apart from the epochs, and the same
    # executable reports its scratch memory.
    compile_start = time.perf_counter()
    step = _make_train_step(optimizer, method, parallel.replicated, config.block).compile(
        model, opt_state, parallel.shard(train.x[:batch]), parallel.shard(train.y[:batch])
    )
    compile_seconds = time.perf_counter() - compile_start
    step_temp_bytes = temp_bytes(step.compiled)

    params = eqx.filter(model, eqx.is_inexact_array)
    leaf_names = gradient_leaf_names(params)
    n_parameters = sum(a.size for a in jax.tree_util.tree_leaves(params))
    writer = is_writer()
    options = {"checkpoint_every": checkpoint_every, "devices": parallel.size}
    saved_at = [(state.epoch, state.step)]

    def checkpoint():
        if writer:
            state.seconds += time.perf_counter() - session[0]
            session[0] = time.perf_counter()
            header = state.to_header(config.to_dict(), data_info, options)
            save_checkpoint(out_dir, (model, opt_state), header)
        saved_at[0] = (state.epoch, state.step)

    session = [start]
    if writer:
        out_dir.mkdir(parents=True, exist_ok=True)
        # Temporary files of writes a kill interrupted (never renamed into place).
        for name in (CHECKPOINT_FILE, MODEL_FILE, METRICS_FILE, SUMMARY_FILE, MODEL_SPEC_FILE):
            for torn in out_dir.glob(f".{name}.*.tmp*"):
                torn.unlink(missing_ok=True)
        # The metrics on disk are the checkpoint's: an epoch finished after the last
        # checkpoint (its files written, the kill before the commit) is trained again.
        write_jsonl(out_dir / METRICS_FILE, state.records)
    if not resume:
        checkpoint()

    summary: dict = {}
    for epoch in range(state.epoch, config.epochs + 1):
        epoch_start = time.perf_counter() - state.train_seconds
        bar = tqdm(
            total=n_steps,
            initial=state.step,
            desc=f"epoch {epoch}/{config.epochs}",
            disable=not progress,
            dynamic_ncols=True,
        )
        with bar:
            for i, (index, x, y) in enumerate(
                training_batches(train, batch, config.augment, rng)
            ):
                if i < state.step:
                    continue  # trained before the interruption: drawn again, not trained
                model, opt_state, loss, n_correct, flags = step(
                    model, opt_state, parallel.shard(x), parallel.shard(y)
                )
                flags = to_host(flags)
                loss = float(to_host(loss))
                state.step = i + 1
                if flags.all():
                    state.loss_sum += loss * len(index)
                    state.correct += int(to_host(n_correct))
                    state.seen += len(index)
                elif config.on_nan == "skip":
                    state.skipped += 1
                    state.nan_skips += 1
                else:
                    last = saved_at[0]
                    raise DivergenceError(
                        f"training diverged in epoch {epoch}, step {i + 1} of {n_steps} "
                        f"(method {config.method}): {describe(flags, loss, leaf_names)}; the "
                        f"last good checkpoint (epoch {last[0]}, step {last[1]}) is kept in "
                        f"{out_dir}; try a smaller learning rate than {config.lr}, or "
                        "--on-nan skip"
                    )
                bar.update(1)
                if state.seen:
                    bar.set_postfix(
                        loss=f"{state.loss_sum / state.seen:.3f}",
                        acc=f"{state.correct / state.seen:.3f}",
                    )
                global_step = (epoch - 1) * n_steps + state.step
                due = checkpoint_every and global_step % checkpoint_every == 0
                if due and state.step < n_steps:  # the epoch's end checkpoints anyway
                    state.train_seconds = time.perf_counter() - epoch_start
                    checkpoint()
            train_seconds = time.perf_counter() - epoch_start
            val_loss, val_accuracy = _evaluate(model, dataset.val, eval_size, parallel)
            test_loss, test_accuracy = _evaluate(model, dataset.test, eval_size, parallel)
            if val_accuracy is not None:
                bar.set_postfix(val_acc=f"{val_accuracy:.3f}")
        seen = state.seen
        state.records.append(
            {
                "epoch": epoch,
                "train_loss": state.loss_sum / seen if seen else None,
                "train_accuracy": state.correct / seen if seen else None,
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
                "test_loss": test_loss,
                "test_accuracy": test_accuracy,
                "skipped_batches": state.skipped,
                "seconds": time.perf_counter() - epoch_start,
                "train_seconds": train_seconds,
            }
        )
        # The next epoch starts from the generator as this one left it.
        state.epoch, state.step, state.epoch_rng = epoch + 1, 0, rng.bit_generator.state
        state.loss_sum, state.correct, state.seen, state.skipped = 0.0, 0, 0, 0
        state.train_seconds = 0.0
        records = state.records
        summary = {
            "complete": epoch == config.epochs,
            "epochs_completed": epoch,
            "val_accuracy": val_accuracy,
            "test_accuracy": test_accuracy,
            "train_accuracy": records[-1]["train_accuracy"],
            **_best(records),
            "wall_seconds": state.seconds + time.perf_counter() - session[0],
            "compile_seconds": compile_seconds,
            "seconds_per_epoch": float(np.mean([r["train_seconds"] for r in records])),
            "peak_memory_bytes": peak_memory_bytes(),
            "step_temp_bytes": step_temp_bytes,
            "batch_used": batch,
            "steps_per_epoch": n_steps,
            "nan_skips": state.nan_skips,
            "devices": parallel.size,
            "processes": jax.process_count(),
            "resumes": state.resumes,
            "n_parameters": int(n_parameters),
            "model": spec,
            "dataset": _dataset_info(dataset),
            "config": recorded,
            "files": [METRICS_FILE, SUMMARY_FILE, MODEL_FILE, MODEL_SPEC_FILE, CHECKPOINT_FILE],
            "jax_version": jax.__version__,
            "device": str(jax.devices()[0].device_kind),
        }
        if writer:
            # The checkpoint goes last: it is the commit. Files written before it and not
            # followed by it are rewritten when the run continues.
            save_model(out_dir, model, spec)
            write_jsonl(out_dir / METRICS_FILE, records)
            for sink in sinks:
                sink.write(records[-1])
            write_json(out_dir / SUMMARY_FILE, summary)
        checkpoint()
    return summary
