"""``plot_runs``: learning curves of training runs, and time and memory of benchmarks, in one figure.

A run is a folder written by :func:`fit` (``metrics.jsonl``, ``summary.json``); a folder of runs
(what :func:`compare` writes, one sub-folder per method) stands for all of them. A benchmark is
a JSON file with ``rows``: dicts holding a sequence length (``T``, ``steps``, ...), a time
(``ms_per_step``, ``median_s``, ...) and/or a memory (``temp_bytes``, ...), and what tells the
rows apart (``method``, ``cell``, ...).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._atomic import atomic_write
from ._trainer import METRICS_FILE, SUMMARY_FILE

FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
# Benchmark row keys, by role; the first present wins. Times are converted to milliseconds.
LENGTH_KEYS = ("T", "steps", "n_steps", "seq_len", "sequence_length", "length")
TIME_KEYS = ("ms_per_step", "median_ms", "time_ms", "median_s", "time_s", "seconds")
MEMORY_KEYS = ("temp_bytes", "memory_bytes", "peak_bytes", "trace_bytes", "bytes")
GROUP_KEYS = ("suite", "cell", "model", "method", "policy")
# Files that name the run folder they are in when given instead of it.
_RUN_FILES = (METRICS_FILE, SUMMARY_FILE, "compare.json")
# The per-epoch curves, one panel each: (metrics.jsonl key, title, y label, percent?).
_CURVES = (
    ("train_loss", "training loss", "loss", False),
    ("val_accuracy", "validation accuracy", "accuracy (%)", True),
    ("test_accuracy", "test accuracy", "accuracy (%)", True),
)


@dataclass(frozen=True)
class Run:
    """One training run: its folder, per-epoch records and what its legend says."""

    path: Path
    records: list[dict]
    method: str
    seed: int | None
    model: str | None


@dataclass(frozen=True)
class Series:
    """One line of a benchmark: a group's values against sequence length."""

    label: str
    lengths: list[float]
    ms: list[float | None]
    mib: list[float | None]


def _read_jsonl(path: Path) -> list[dict]:
    records = []
    with open(path) as f:
        for line_no, line in enumerate(f, start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}: line {line_no} is not JSON ({e.msg})") from None
    return records


def _read_run(folder: Path) -> Run:
    records = _read_jsonl(folder / METRICS_FILE)
    summary_path = folder / SUMMARY_FILE
    config = {}
    if summary_path.is_file():
        config = json.loads(summary_path.read_text()).get("config", {})
    # A run still in its first epochs has no summary yet: its folder's name stands in.
    return Run(folder, records, config.get("method", folder.name), config.get("seed"),
               config.get("model"))  # fmt: skip


def find_runs(path: str | os.PathLike) -> list[Run]:
    """The runs in `path`: the run itself, or every sub-folder holding one (a compare folder).

    **Raises:** `FileNotFoundError` for a missing folder, `ValueError` for one holding no run.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such run folder")
    if (path / METRICS_FILE).is_file():
        return [_read_run(path)]
    runs = [_read_run(p) for p in sorted(path.iterdir()) if (p / METRICS_FILE).is_file()]
    if not runs:
        raise ValueError(
            f"{path}: no {METRICS_FILE} in it or in its sub-folders; pass a folder written by "
            "snnplast train or snnplast compare, or a benchmark .json"
        )
    return runs


def _row_lists(data, prefix: str = "") -> list[tuple[str, list]]:
    """Every ``rows`` list in a benchmark document, with the keys leading to it."""
    if isinstance(data, list):
        return [(prefix, data)] if all(isinstance(r, dict) for r in data) else []
    if not isinstance(data, dict):
        return []
    if isinstance(data.get("rows"), list):
        return [(prefix, data["rows"])]
    found = []
    for key, value in data.items():
        found += _row_lists(value, f"{prefix}{key}: " if isinstance(value, dict) else prefix)
    return found


def _number(value) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _first_key(rows: list[dict], keys: Sequence[str]) -> str | None:
    return next((k for k in keys if any(_number(r.get(k)) is not None for r in rows)), None)


def _to_ms(key: str) -> float:
    return 1.0 if "ms" in key.split("_") else 1e3


def read_benchmark(path: str | os.PathLike) -> tuple[list[Series], str | None, str | None]:
    """The lines of a benchmark JSON file: each group's time and memory against length.

    **Returns:** ``(series, time_key, memory_key)``: the keys the values were read from (None
    when the file has none of that kind). Rows without a length (skipped cases) are left out.

    **Raises:** `ValueError` naming the file and the keys looked for, when it has no rows with a
    sequence length and a time or memory.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such benchmark file")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e.msg}, line {e.lineno})") from None
    series: list[Series] = []
    time_key = memory_key = None
    for prefix, rows in _row_lists(data):
        length_key = _first_key(rows, LENGTH_KEYS)
        t_key, m_key = _first_key(rows, TIME_KEYS), _first_key(rows, MEMORY_KEYS)
        if length_key is None or (t_key is None and m_key is None):
            continue
        time_key, memory_key = time_key or t_key, memory_key or m_key
        groups: dict[str, list[dict]] = {}
        for row in rows:
            if _number(row.get(length_key)) is None:
                continue
            name = " / ".join(str(row[k]) for k in GROUP_KEYS if isinstance(row.get(k), str))
            groups.setdefault(prefix + (name or "rows"), []).append(row)
        for label, members in groups.items():
            members.sort(key=lambda r: r[length_key])
            t = [_number(r.get(t_key)) if t_key else None for r in members]
            m = [_number(r.get(m_key)) if m_key else None for r in members]
            series.append(
                Series(
                    label,
                    [float(r[length_key]) for r in members],
                    [None if v is None else v * _to_ms(t_key) for v in t],
                    [None if v is None else v / 2**20 for v in m],
                )
            )
    if not series:
        raise ValueError(
            f"{path}: no benchmark rows with a sequence length ({', '.join(LENGTH_KEYS)}) and a "
            f"time ({', '.join(TIME_KEYS)}) or memory ({', '.join(MEMORY_KEYS)})"
        )
    return series, time_key, memory_key


def _labels(runs: list[Run]) -> list[str]:
    models = {r.model for r in runs}
    labels = []
    for r in runs:
        label = r.method if r.seed is None else f"{r.method}, seed {r.seed}"
        labels.append(f"{r.model}: {label}" if len(models) > 1 and r.model else label)
    # Two runs alike in all of that are told apart by their folders.
    return [
        f"{label} ({r.path.name})" if labels.count(label) > 1 else label
        for label, r in zip(labels, runs, strict=True)
    ]


def _plot_runs(axes, runs: list[Run]) -> None:
    methods = list(dict.fromkeys(r.method for r in runs))
    seeds = list(dict.fromkeys(r.seed for r in runs))
    dashes, markers = ("-", "--", ":", "-."), "osD^vP*X"
    for r, label in zip(runs, _labels(runs), strict=True):
        # Colour by method, dashes by seed: the seeds of one method read as one family.
        i, j = methods.index(r.method), seeds.index(r.seed)
        style = {"color": f"C{i % 10}", "linestyle": dashes[j % 4], "marker": markers[i % 8],
                 "markersize": 4, "label": label}  # fmt: skip
        for ax, (key, _, _, percent) in zip(axes, _CURVES, strict=True):
            points = [
                (rec["epoch"], 100 * rec[key] if percent else rec[key])
                for rec in r.records
                if _number(rec.get(key)) is not None and "epoch" in rec
            ]
            if points:
                ax.plot(*zip(*points, strict=True), **style)
    for ax, (_, title, ylabel, percent) in zip(axes, _CURVES, strict=True):
        ax.set(title=title, xlabel="epoch", ylabel=ylabel)
        if percent:
            ax.set_ylim(0, 102)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=8)


def _plot_benchmarks(axes, benchmarks) -> None:
    time_ax, memory_ax = axes
    time_keys, memory_keys = set(), set()
    for path, (series, time_key, memory_key) in benchmarks:
        prefix = f"{Path(path).stem}: " if len(benchmarks) > 1 else ""
        time_keys.add(time_key)
        memory_keys.add(memory_key)
        for i, s in enumerate(series):
            for ax, values in ((time_ax, s.ms), (memory_ax, s.mib)):
                points = [(n, v) for n, v in zip(s.lengths, values, strict=True) if v is not None]
                if points:
                    ax.plot(*zip(*points, strict=True), marker="os^Dv"[i % 5],
                            label=prefix + s.label)  # fmt: skip
    names = {"time": sorted(time_keys - {None}), "memory": sorted(memory_keys - {None})}
    time_ax.set(title="time", ylabel=f"ms (from {', '.join(names['time'])})")
    memory_ax.set(title="memory", ylabel=f"MiB (from {', '.join(names['memory'])})")
    for ax in axes:
        ax.set(xlabel="sequence length (steps)", xscale="log", yscale="log")
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)


def _check_paths(paths) -> list[Path]:
    if isinstance(paths, str | os.PathLike) or not paths:
        raise ValueError(
            f"paths must be a non-empty list of run folders or .json files, got {paths!r}"
        )
    return [Path(p) for p in paths]


def figure(paths: Sequence[str | os.PathLike]):
    """The matplotlib figure :func:`plot_runs` saves (the caller closes it).

    One row of panels for the runs (training loss, validation and test accuracy per epoch),
    one for the benchmarks (time and memory against sequence length), each row only when some
    path gives it something to draw.
    """
    runs, benchmarks = [], []
    for path in _check_paths(paths):
        if path.name in _RUN_FILES and path.is_file():
            path = path.parent  # a run's own file stands for its folder
        if path.suffix.lower() == ".json" and not path.is_dir():
            benchmarks.append((path, read_benchmark(path)))
        else:
            runs += find_runs(path)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row, present in (("runs", runs), ("bench", benchmarks)) if present]
    fig, grid = plt.subplots(len(rows), 3, figsize=(15, 4.4 * len(rows)), squeeze=False)
    for axes, row in zip(grid, rows, strict=True):
        if row == "runs":
            _plot_runs(axes, runs)
        else:
            _plot_benchmarks(axes[:2], benchmarks)
            axes[2].remove()
    fig.tight_layout()
    return fig


def plot_runs(paths: Sequence[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Draw learning curves of runs and time/memory of benchmarks into one image.

    Runs give three panels per epoch (training loss, validation and test accuracy), one line
    per run, its method and seed in the legend; benchmarks two (time and memory against
    sequence length, log-log), one line per method (or cell / model, as the rows say).

    **Arguments:**

    - `paths`: run folders, folders of runs (``snnplast compare``'s) and benchmark ``.json``
      files, in any mix.
    - `out`: the image (``.png``, ``.pdf``, ``.svg``, ``.jpg``), written atomically.

    **Returns:** `out`.

    **Raises:** `ValueError` / `FileNotFoundError` naming a path that is none of those, or an
    unknown image type; nothing is written then.
    """
    out = Path(out).expanduser()
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"--out {out}: unknown image type; allowed: {', '.join(FORMATS)}")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"--out {out}: folder {out.parent} does not exist")
    fig = figure(paths)
    import matplotlib.pyplot as plt

    try:
        atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=110, format=out.suffix[1:].lower()))
    finally:
        plt.close(fig)
    return out
