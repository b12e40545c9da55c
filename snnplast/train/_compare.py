"""``compare``: train several gradient methods under one budget and set their results side by side."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from .._atomic import atomic_write_bytes
from ._batches import training_batches
from ._checkpoint import write_json
from ._config import TrainConfig
from ._method import parse_method
from ._models import build_model
from ._objective import loss_and_grad
from ._trainer import METRICS_FILE, SUMMARY_FILE, _check_dataset, _dataset_info, fit

REFERENCE = "bptt"
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


def parse_methods(methods: str | Sequence[str], lam: float = 1.0) -> tuple[str, ...]:
    """Check a list of methods before any work starts; return their canonical text forms.

    **Arguments:**

    - `methods`: method texts (see :func:`parse_method`), or one comma-separated string.
    - `lam`: the trace decay the online methods will run with (``bptt`` always uses 1.0).

    **Returns:** the methods, stripped and lower-cased, in the order given.

    **Raises:** `ValueError` for an empty list, an empty entry, an unknown method (naming it) or
    a method listed twice; `TypeError` for something that is not text.
    """
    if isinstance(methods, str):
        items = methods.split(",")
        if not methods.strip():
            items = []
    elif isinstance(methods, Sequence) and all(isinstance(m, str) for m in methods):
        items = list(methods)
    else:
        raise TypeError(
            f"methods must be a comma-separated string or a list of strings, got {methods!r}"
        )
    if not items:
        raise ValueError("no methods given; name at least one, e.g. 'bptt,diagonal,immediate'")
    canonical: list[str] = []
    parsed: list = []
    for item in items:
        text = item.strip().lower()
        if not text:
            raise ValueError(f"methods {','.join(items)!r} has an empty entry between commas")
        method = parse_method(text, 1.0 if text == REFERENCE else lam)
        # Two spellings of one method ('head-sparse:0.5', 'head-sparse:.50') are one method.
        for earlier_text, earlier in zip(canonical, parsed, strict=True):
            if text == earlier_text or _same_method(method, earlier):
                raise ValueError(
                    f"method {item.strip()!r} is listed twice (as {earlier_text!r} already)"
                )
        canonical.append(text)
        parsed.append(method)
    return tuple(canonical)


def _same_method(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return type(a) is type(b) and bool(eqx.tree_equal(a, b))


def _run_config(config: TrainConfig, method: str) -> TrainConfig:
    return dataclasses.replace(
        config, method=method, lam=1.0 if method == REFERENCE else config.lam
    )


def _folder_name(method: str) -> str:
    # 'random-k:4' -> 'random-k-4': a colon is awkward in paths on some systems.
    return re.sub(r"[^a-z0-9._-]+", "-", method)


def first_batch(config: TrainConfig, train) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first batch :func:`fit` trains on with `config` (epoch 1, step 1), as it sees it.

    ``fit`` seeds a NumPy generator with ``config.seed`` and draws its batches from it with
    ``training_batches``; this takes that generator's first batch.

    **Returns:** ``(index, x, y)``: the samples' indices in `train`, their inputs (shifted along
    the channels as ``fit`` shifts them, when ``config.channel_shift`` > 0) and their labels.
    """
    rng = np.random.default_rng(config.seed)
    batch = min(config.batch, len(train.y))
    return next(training_batches(train, batch, config.channel_shift, rng))


@eqx.filter_jit
def _gradient(model, x, y, method):
    _, grads = loss_and_grad(model, x.astype(jnp.float32), y, method)
    return grads


def _leaves(grads) -> tuple[jax.tree_util.PyTreeDef, dict[str, np.ndarray]]:
    """The gradient's arrays by their path in the model (``[0].weight_in``), flattened to float64.

    float64 on the host: the cosine of a gradient with itself is then 1 to ~1e-16.
    """
    grads = eqx.filter(grads, eqx.is_inexact_array)
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(grads)
    leaves = {
        jax.tree_util.keystr(path): np.asarray(leaf, np.float64).ravel()
        for path, leaf in with_paths
    }
    return treedef, leaves


def _cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    norms = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
    return float(np.dot(a, b) / norms) if norms > 0 and math.isfinite(norms) else None


def gradient_agreement(config: TrainConfig, dataset, methods: Sequence[str]) -> dict[str, dict]:
    """Cosine similarity of each method's first-step gradient with BPTT's.

    The model is built as :func:`fit` builds it (``config.seed``) and the batch is the first one
    ``fit`` trains on (:func:`first_batch`), so this is the direction of the very first update.
    All gradient leaves are flattened into one vector.

    **Returns:** ``{method: {"cosine", "grad_norm", "norm_ratio", "cosine_by_parameter"}}``
    with BPTT's entry included: the cosine (None when either gradient is zero or not finite),
    the gradient's norm, its ratio to BPTT's, and the cosine of each parameter array by its
    path in the model.
    """
    _, x, y = first_batch(config, dataset.train)
    model = build_model(
        config.model,
        dataset.n_channels,
        config.hidden,
        dataset.n_classes,
        key=jax.random.PRNGKey(config.seed),
    )
    reference_def, reference_leaves = _leaves(_gradient(model, x, y, REFERENCE))
    reference = np.concatenate(list(reference_leaves.values()))
    reference_norm = float(np.linalg.norm(reference))
    result = {}
    for text in dict.fromkeys([REFERENCE, *methods]):
        run = _run_config(config, text)
        if text == REFERENCE:
            treedef, leaves = reference_def, reference_leaves
        else:
            treedef, leaves = _leaves(_gradient(model, x, y, parse_method(run.method, run.lam)))
        if treedef != reference_def:
            raise ValueError(
                f"method {text!r} returned gradients shaped {treedef}, "
                f"but BPTT's are shaped {reference_def}"
            )
        g = np.concatenate(list(leaves.values()))
        norm = float(np.linalg.norm(g))
        cosine = _cosine(g, reference)
        result[text] = {
            "cosine": cosine,
            # None, not NaN, for a non-finite gradient: compare.json stays strict JSON.
            "grad_norm": norm if math.isfinite(norm) else None,
            "norm_ratio": norm / reference_norm if cosine is not None else None,
            # Per parameter array: the readout's gradient is often exact for every method and
            # can dominate the overall cosine; these show where the methods differ.
            "cosine_by_parameter": {
                name: _cosine(leaf, reference_leaves[name]) for name, leaf in leaves.items()
            },
        }
    return result


def _read_curves(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [{key: r.get(key) for key in _CURVE_KEYS} for r in records]


def _train_one(config: TrainConfig, dataset, folder: Path, progress: bool) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    # A previous run's files in this folder must not pass for this run's if it fails early.
    for name in (METRICS_FILE, SUMMARY_FILE):
        (folder / name).unlink(missing_ok=True)
    error = None
    summary: dict = {}
    try:
        summary = fit(config, dataset, folder, progress=progress)
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

    **Returns:** what ``compare.json`` holds.

    **Raises:** `ValueError`/`TypeError` for bad methods, settings or data (before training).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    methods = parse_methods(methods, config.lam)
    runs = {m: _run_config(config, m) for m in methods}
    _check_dataset(dataset)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    agreement = gradient_agreement(config, dataset, methods)
    results = []
    bar = tqdm(methods, desc="compare", unit="method", disable=not progress, dynamic_ncols=True)
    for method in bar:
        bar.set_description(f"compare: {method}")
        folder = _folder_name(method)
        run = _train_one(runs[method], dataset, out_dir / folder, progress)
        results.append({"method": method, "dir": folder, **run, **agreement[method]})
        if progress:
            tqdm.write(_one_line(results[-1]))
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


def _pct(a) -> str:
    return "n/a" if a is None else f"{100 * a:.1f}%"


def _size(n) -> str:
    if n is None:
        return "n/a"
    if n < 2**20:
        return f"{n / 2**10:.1f} KiB"
    return f"{n / 2**20:.1f} MiB" if n < 2**30 else f"{n / 2**30:.2f} GiB"


def _num(a, spec: str) -> str:
    return "n/a" if a is None else format(a, spec)


def _one_line(r: dict) -> str:
    state = f" ({r['status']}: {r['error']})" if r["error"] else ""
    return (
        f"{r['method']}: test {_pct(r['test_accuracy'])}, best val "
        f"{_pct(r['best_val_accuracy'])}, {_num(r['seconds_per_epoch'], '.2f')} s/epoch, "
        f"grad cosine vs bptt {_num(r['cosine'], '.4f')}{state}"
    )


def markdown(report: dict) -> str:
    """The ``compare.md`` text of a :func:`compare` report."""
    c, d = report["config"], report["dataset"]
    header = (
        f"Model `{c['model']}`, {c['hidden']} hidden, {c['epochs']} epochs, batch {c['batch']}, "
        f"lr {c['lr']} ({c.get('schedule', 'constant')}), channel shift "
        f"{c.get('channel_shift', 0)}, seed {c['seed']}, lam {c['lam']} (online methods); "
        f"data `{c['data']}` "
        f"(`{d['source']}`: {d['n_train']} train / {d['n_val']} val / {d['n_test']} test, "
        f"{d['n_classes']} classes, {d['n_channels']} channels, {d['n_bins']} bins)."
    )
    columns = (
        "method", "test acc", "best val acc (epoch)", "train s / epoch", "compile s",
        "step scratch", "peak RSS", "grad cosine vs BPTT",
    )  # fmt: skip
    lines = [
        "# snnplast compare",
        "",
        header,
        "",
        "| " + " | ".join(columns) + " |",
        "|---" + "|--:" * (len(columns) - 1) + "|",
    ]
    for r in report["runs"]:
        if not r["trained"]:
            lines.append(
                f"| {r['method']} (reference, not trained) | | | | | | "
                f"| {_num(r['cosine'], '.4f')} |"
            )
            continue
        best = _pct(r["best_val_accuracy"])
        if r["best_epoch"] is not None:
            best += f" ({r['best_epoch']})"
        name = r["method"] + (f" ({r['status']})" if r["error"] else "")
        lines.append(
            f"| {name} | {_pct(r['test_accuracy'])} | {best} "
            f"| {_num(r['seconds_per_epoch'], '.2f')} | {_num(r['compile_seconds'], '.1f')} "
            f"| {_size(r['step_temp_bytes'])} | {_size(r['peak_memory_bytes'])} "
            f"| {_num(r['cosine'], '.4f')} |"
        )
    n_batch = len(report["gradient_batch"]["indices"])
    notes = (
        (
            "**test acc**: after the last epoch; **best val acc**: the highest validation accuracy "
            "and the first epoch reaching it."
        ),
        (
            "**train s / epoch**: the training steps of an epoch (mean over epochs), without "
            "evaluation and without the one-off **compile** of the training step."
        ),
        (
            "**step scratch**: the temporary memory XLA allocates for one compiled training step, "
            "the per-method memory cost. **peak RSS** is the whole process's high-water mark: it "
            "includes the data and the runtime, and the runs share one process, so it only grows "
            "down the table and is not a per-method number."
        ),
        (
            "**grad cosine vs BPTT**: cosine similarity of the method's gradient with BPTT's, all "
            f"parameters flattened into one vector, at the initial weights (seed {c['seed']}) on "
            f"the first batch `fit` trains on ({n_batch} samples: the first batch of epoch 1's "
            "shuffle, channel-shifted as `fit` shifts it). 1 means the same direction as the "
            "exact gradient."
        ),
    )
    lines += ["", *(f"- {note}" for note in notes)]
    for r in report["runs"]:
        if r["error"]:
            lines.append(
                f"- **{r['method']}** stopped: {r['error']}; its row shows the last "
                "complete epoch, if any."
            )
    lines += ["", *_parameter_table(report["runs"])]
    lines += ["", "Command:", "", "```", report["command"], "```", ""]
    return "\n".join(lines)


def _parameter_table(runs: list[dict]) -> list[str]:
    """The first-step gradient's cosine with BPTT's per parameter array, and its norm ratio."""
    names = list(runs[0]["cosine_by_parameter"])
    intro = (
        "Where the gradients differ: the same cosine per parameter array (one large array, "
        "often the readout's, can dominate the overall cosine), and the gradient's norm relative "
        "to BPTT's."
    )
    lines = [
        intro,
        "",
        "| method | " + " | ".join(f"`{name}`" for name in names) + " | norm / BPTT's |",
        "|---" + "|--:" * (len(names) + 1) + "|",
    ]
    for r in runs:
        cosines = [_num(r["cosine_by_parameter"][name], ".4f") for name in names]
        lines.append(
            f"| {r['method']} | " + " | ".join(cosines) + f" | {_num(r['norm_ratio'], '.3f')} |"
        )
    return lines


def plot(report: dict) -> bytes:
    """The ``compare.png`` of a :func:`compare` report, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in report["runs"] if r["trained"]]
    colors = {r["method"]: f"C{i}" for i, r in enumerate(runs)}
    fig, (acc_ax, loss_ax, bar_ax) = plt.subplots(1, 3, figsize=(15, 4.6))
    # Methods often coincide (the same accuracy each epoch): markers and dashes keep each visible.
    markers, dashes = "osD^vP*X", ("-", "--", ":", "-.")
    for i, r in enumerate(runs):
        epochs = [p["epoch"] for p in r["curves"]]
        style = {
            "color": colors[r["method"]],
            "marker": markers[i % len(markers)],
            "linestyle": dashes[i % len(dashes)],
            "markersize": 6 - 0.6 * (i % 4),
            "label": r["method"],
        }
        val = [
            (e, 100 * p["val_accuracy"])
            for e, p in zip(epochs, r["curves"], strict=True)
            if p["val_accuracy"] is not None
        ]
        if val:
            acc_ax.plot(*zip(*val, strict=True), **style)
        loss_ax.plot(epochs, [p["train_loss"] for p in r["curves"]], **style)
    acc_ax.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 102))
    loss_ax.set(
        title="training loss", xlabel="epoch", ylabel="cross-entropy summed over time steps"
    )
    for ax in (acc_ax, loss_ax):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a run that diverged in epoch 1 draws nothing
            ax.legend(fontsize=9)

    names = [r["method"] for r in runs]
    heights = [100 * (r["test_accuracy"] or 0.0) for r in runs]
    bars = bar_ax.bar(range(len(runs)), heights, color=[colors[n] for n in names])
    bar_ax.bar_label(bars, labels=[_pct(r["test_accuracy"]) for r in runs], padding=2)
    bar_ax.set_xticks(
        range(len(runs)), [f"{r['method']}\ncos {_num(r['cosine'], '.3f')}" for r in runs]
    )
    bar_ax.set(title="test accuracy after the last epoch", ylabel="accuracy (%)", ylim=(0, 110))
    bar_ax.grid(axis="y", alpha=0.3)

    c, d = report["config"], report["dataset"]
    fig.suptitle(
        f"{c['model']}, {c['hidden']} hidden, {c['epochs']} epochs on {c['data']} "
        f"({d['n_classes']} classes), seed {c['seed']}; cos = first-step gradient "
        "cosine with BPTT"
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=110)
    finally:
        plt.close(fig)
    return buffer.getvalue()
