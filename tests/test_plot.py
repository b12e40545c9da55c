"""``snnplast plot`` (learning curves, benchmark time and memory) and TensorBoard event files.

The runs plotted come from a real ``fit`` on a tiny made-up data set; what the figure shows is
checked against their ``metrics.jsonl``. TensorBoard files are read back record by record.
"""

import importlib.util
import json
import os
import struct
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from snnplast._cli import main
from snnplast.data import SpikeDataset, Split
from snnplast.train import TensorBoardSink, TrainConfig, fit
from snnplast.train._plot import figure, read_benchmark

T, C, N_CLASSES = 12, 9, 3
REPO = Path(__file__).resolve().parents[1]


def _split(rng, n):
    y = np.arange(n, dtype=np.int32) % N_CLASSES
    rates = np.full((n, T, C), 0.05)
    for k in range(N_CLASSES):
        rates[y == k, :, 3 * k : 3 * k + 3] = 0.6
    return Split(x=rng.poisson(rates).astype(np.uint8), y=y, speakers=np.zeros(n, np.int32))


def _dataset():
    rng = np.random.default_rng(0)
    return SpikeDataset(
        train=_split(rng, 24), val=_split(rng, 12), test=_split(rng, 12), n_classes=N_CLASSES,
        n_channels=C, n_bins=T, class_names=("a", "b", "c"), source="fake",
    )  # fmt: skip


def _config(method, seed):
    return TrainConfig(model="lif", hidden=8, method=method, epochs=3, batch=6, lr=1e-2,
                       seed=seed, eval_batch=12)  # fmt: skip


def _copy_run(source, folder, method, seed, scale):
    """Another run's files: `source`'s curves scaled, under another method and seed."""
    folder.mkdir(parents=True)
    records = [
        {k: v * scale if k.endswith(("loss", "accuracy")) and v is not None else v
         for k, v in r.items()}
        for r in _metrics(source)
    ]  # fmt: skip
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    summary = json.loads((source / "summary.json").read_text())
    summary["config"].update(method=method, seed=seed)
    (folder / "summary.json").write_text(json.dumps(summary))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A compare-like folder (one sub-folder per method) and a lone run of another seed.

    One real ``fit`` (with TensorBoard events when tensorboardX is installed); the other two
    runs are its files with scaled curves, so that the lines differ.
    """
    root = tmp_path_factory.mktemp("runs")
    first = root / "cmp" / "bptt"
    sinks = [TensorBoardSink(first)] if importlib.util.find_spec("tensorboardX") else []
    try:
        fit(_config("bptt", 0), _dataset(), first, progress=False, sinks=sinks)
    finally:
        for sink in sinks:
            sink.close()
    _copy_run(first, root / "cmp" / "immediate", "immediate", 0, 0.5)
    _copy_run(first, root / "seed1", "bptt", 1, 0.8)
    return root


def _metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_curves_are_the_runs_metrics(runs):
    fig = figure([runs / "cmp", runs / "seed1"])
    try:
        loss_ax, val_ax, test_ax = fig.axes
        assert set(_lines(loss_ax)) == {"bptt, seed 0", "immediate, seed 0", "bptt, seed 1"}
        legend = [t.get_text() for t in loss_ax.get_legend().get_texts()]
        assert sorted(legend) == sorted(_lines(loss_ax))
        for label, folder in (("immediate, seed 0", runs / "cmp" / "immediate"),
                              ("bptt, seed 1", runs / "seed1")):  # fmt: skip
            records = _metrics(folder)
            epochs = [r["epoch"] for r in records]
            for ax, key, scale in ((loss_ax, "train_loss", 1), (val_ax, "val_accuracy", 100),
                                   (test_ax, "test_accuracy", 100)):  # fmt: skip
                x, y = _lines(ax)[label].get_data()
                assert list(x) == epochs
                np.testing.assert_allclose(y, [scale * r[key] for r in records])
        # One colour per method, a dash per seed.
        lines = _lines(loss_ax)
        assert lines["bptt, seed 0"].get_color() == lines["bptt, seed 1"].get_color()
        assert lines["bptt, seed 0"].get_color() != lines["immediate, seed 0"].get_color()
        assert lines["bptt, seed 0"].get_linestyle() != lines["bptt, seed 1"].get_linestyle()
    finally:
        plt.close(fig)


def test_benchmark_rows_in_the_new_suite_shape(tmp_path):
    bench = {
        "meta": {"command": "python benchmarks/x.py", "steps": [100, 400]},
        "suites": {
            "lif": {"rows": [
                {"method": "bptt", "T": 400, "ms_per_step": 0.5, "temp_bytes": 4 * 2**20},
                {"method": "bptt", "T": 100, "ms_per_step": 0.4, "temp_bytes": 2**20},
                {"method": "diagonal", "T": 100, "ms_per_step": 0.6, "temp_bytes": 2**19},
                {"method": "diagonal", "T": 400, "skipped": "too big"},
            ]},
        },
    }  # fmt: skip
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bench))
    series, time_key, memory_key = read_benchmark(path)
    assert (time_key, memory_key) == ("ms_per_step", "temp_bytes")
    by_label = {s.label: s for s in series}
    assert set(by_label) == {"suites: lif: bptt", "suites: lif: diagonal"}
    bptt = by_label["suites: lif: bptt"]
    assert bptt.lengths == [100.0, 400.0] and bptt.ms == [0.4, 0.5] and bptt.mib == [1.0, 4.0]
    diagonal = by_label["suites: lif: diagonal"]
    assert diagonal.lengths == [100.0, 400.0] and diagonal.ms == [0.6, None]


def test_committed_benchmark_is_read_in_milliseconds():
    path = REPO / "benchmarks" / "results" / "online_vs_bptt.json"
    rows = json.loads(path.read_text())["rows"]
    series, time_key, memory_key = read_benchmark(path)
    assert (time_key, memory_key) == ("median_s", "temp_bytes")
    bptt = {s.label: s for s in series}["bptt"]
    want = sorted((r["T"], r["median_s"]) for r in rows if r["method"] == "bptt")
    assert bptt.lengths == [t for t, _ in want]
    np.testing.assert_allclose(bptt.ms, [1e3 * s for _, s in want])


def test_cli_plots_runs_and_benchmarks(runs, tmp_path, capsys):
    out = tmp_path / "fig.png"
    bench = REPO / "benchmarks" / "results" / "online_vs_bptt.json"
    # A run's own metrics file stands for its folder.
    paths = [str(runs / "cmp"), str(runs / "seed1" / "metrics.jsonl"), str(bench)]
    assert main(["plot", *paths, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = figure([runs / "seed1", bench])
    try:
        assert len(fig.axes) == 5  # three per-epoch panels, then time and memory
        time_ax = fig.axes[3]
        assert time_ax.get_xscale() == "log" and "bptt" in _lines(time_ax)
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    "case, culprit",
    [("empty folder", "empty"), ("no rows", "x.json"), ("bad type", "fig.gif"),
     ("missing", "nowhere")],
)  # fmt: skip
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, case, culprit):
    (tmp_path / "empty").mkdir()
    (tmp_path / "x.json").write_text(json.dumps({"rows": [{"method": "a", "loss": 1.0}]}))
    path = {"no rows": "x.json", "missing": "nowhere"}.get(case, "empty")
    out = tmp_path / ("fig.gif" if case == "bad type" else "fig.png")
    code = main(["plot", str(tmp_path / path), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("snnplast plot: error:") and "\n" not in err
    assert culprit in err
    assert sorted(os.listdir(tmp_path)) == ["empty", "x.json"]


def _scalars(folder):
    """Every scalar in the TensorBoard event files of `folder`, as {tag: [(step, value)]}.

    The files are TFRecords (length, its CRC, an ``Event`` protobuf, its CRC), read here
    independently of the writer; only the protobuf message class comes from tensorboardX.
    """
    from tensorboardX.proto import event_pb2

    scalars = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_tensorboard_events_hold_the_metrics(runs):
    pytest.importorskip("tensorboardX")
    run = runs / "cmp" / "bptt"
    scalars = _scalars(run)
    records = _metrics(run)
    for key, tag in (("train_loss", "loss/train"), ("val_accuracy", "accuracy/val"),
                     ("test_loss", "loss/test"), ("train_seconds", "seconds/train")):  # fmt: skip
        steps, values = zip(*scalars[tag], strict=True)
        assert list(steps) == [r["epoch"] for r in records]
        np.testing.assert_allclose(values, [r[key] for r in records], rtol=1e-6)


def test_tensorboard_without_the_extra_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import now raises ImportError
    out = tmp_path / "run"
    code = main(["train", "--data", "synth", "--tensorboard", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err == (
        "snnplast train: error: TensorBoard logging needs tensorboardX: "
        "pip install 'snnplast[tensorboard]'"
    )
    assert not out.exists()
