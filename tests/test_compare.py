"""``snnplast compare``: methods trained side by side, the gradient cosine, and its three files."""

import dataclasses
import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnplast._cli import main
from snnplast.data import SpikeDataset, Split, write_shd_h5
from snnplast.train import (
    TrainConfig,
    build_model,
    compare,
    first_batch,
    gradient_agreement,
    loss_and_grad,
    parse_method,
    parse_methods,
)
from snnplast.train._augment import shift_channels

KEYS = ("zero", "one", "two")
METHODS = ("bptt", "diagonal", "immediate")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _write_split(path, n, speakers, rng):
    """Class k spikes on its own band of 20 input channels (4 pooled channels), ~40 spikes each."""
    labels = np.arange(n) % len(KEYS)
    times, units = [], []
    for label in labels:
        count = rng.poisson(40)
        times.append(np.sort(rng.uniform(0.0, 1.0, count)))
        units.append(rng.integers(20 * label, 20 * label + 20, count))
    write_shd_h5(path, times, units, labels, np.arange(n) % speakers, KEYS)


def _fake_dataset() -> SpikeDataset:
    """In memory, for the library-level tests: 3 classes on their own thirds of 12 channels."""
    rng = np.random.default_rng(0)

    def split(n):
        y = np.arange(n, dtype=np.int32) % 3
        rates = np.full((n, 1, 12), 0.05)
        for k in range(3):
            rates[y == k, :, 4 * k : 4 * k + 4] = 0.6
        x = rng.poisson(np.broadcast_to(rates, (n, 10, 12))).astype(np.uint8)
        return Split(x=x, y=y, speakers=np.zeros(n, np.int32))

    return SpikeDataset(
        train=split(30),
        val=split(12),
        test=split(12),
        n_classes=3,
        n_channels=12,
        n_bins=10,
        class_names=KEYS,
        source="fake",
    )


@pytest.fixture(scope="module")
def shd_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shd")
    rng = np.random.default_rng(0)
    # 6 training speakers: loading holds one out for validation (10%, at least one).
    _write_split(folder / "shd_train.h5", 66, 6, rng)
    _write_split(folder / "shd_test.h5", 30, 3, rng)
    return folder


@pytest.fixture(scope="module")
def compared(shd_folder, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SNNPLAST_CACHE", str(cache))
        argv = ["compare", "--methods", ",".join(METHODS), "--data", str(shd_folder)]
        argv += [
            "--model",
            "lif",
            "--hidden",
            "8",
            "--epochs",
            "2",
            "--batch",
            "11",
            "--lr",
            "0.01",
            "--bins",
            "10",
            "--no-progress",
            "--out",
            str(out),
        ]
        code = main(argv)
    return code, out


def test_writes_all_three_files(compared):
    code, out = compared
    assert code == 0
    for name in ("compare.md", "compare.json", "compare.png"):
        assert (out / name).is_file()
    assert (out / "compare.png").read_bytes()[:8] == PNG_SIGNATURE
    for method in METHODS:
        assert (out / method / "summary.json").is_file()
    assert not list(out.glob(".*.tmp"))


def test_json_has_every_method_with_finite_numbers(compared):
    _, out = compared
    report = json.loads((out / "compare.json").read_text())
    assert report["methods"] == list(METHODS)
    runs = {r["method"]: r for r in report["runs"]}
    assert list(runs) == list(METHODS)
    for r in runs.values():
        assert r["trained"] and r["status"] == "complete" and r["error"] is None
        for key in (
            "test_accuracy",
            "best_val_accuracy",
            "seconds_per_epoch",
            "compile_seconds",
            "peak_memory_bytes",
            "cosine",
            "grad_norm",
        ):
            assert math.isfinite(r[key]), (r["method"], key)
        assert -1.0 <= r["cosine"] <= 1.0 + 1e-9
        assert all(math.isfinite(c) for c in r["cosine_by_parameter"].values())
        assert [p["epoch"] for p in r["curves"]] == [1, 2]
        assert all(math.isfinite(p["train_loss"]) for p in r["curves"])
    assert report["config"]["hidden"] == 8 and "method" not in report["config"]
    assert report["dataset"]["n_classes"] == 3
    assert len(report["gradient_batch"]["indices"]) == 11


def test_markdown_has_a_row_per_method_and_the_command(compared, shd_folder):
    _, out = compared
    text = (out / "compare.md").read_text()
    lines = text.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("| method | test acc")))
    rows = lines[start + 2 : start + 2 + len(METHODS)]
    assert [row.split("|")[1].strip() for row in rows] == list(METHODS)
    assert not lines[start + 2 + len(METHODS)].startswith("|")
    assert "`.layers[0].w_in`" in text  # the per-parameter cosine table
    assert "step scratch" in text and "peak RSS" in text
    assert f"--methods bptt,diagonal,immediate --data {shd_folder}" in text


def test_cosine_is_that_of_the_first_batch_fit_trains_on(getkey):
    dataset = _fake_dataset()
    config = TrainConfig(model="lif", hidden=8, epochs=1, batch=7, seed=5, method="diagonal")
    index, xb, yb = first_batch(config, dataset.train)
    assert len(index) == 7 and len(set(index.tolist())) == 7
    np.testing.assert_array_equal(yb, dataset.train.y[index])
    # fit shifts its batches along the channels (default channel_shift 3): so does first_batch,
    # each row by one shift of at most 3 channels.
    assert config.channel_shift == 3 and not np.array_equal(xb, dataset.train.x[index])
    for row, original in zip(xb, dataset.train.x[index]):
        assert any(
            np.array_equal(row, shift_channels(original[None], np.array([k]))[0])
            for k in range(-3, 4)
        )
    unshifted = dataclasses.replace(config, channel_shift=0)
    np.testing.assert_array_equal(first_batch(unshifted, dataset.train)[1], dataset.train.x[index])
    agreement = gradient_agreement(config, dataset, ["diagonal"])
    assert set(agreement) == {"bptt", "diagonal"}

    model = build_model("lif", dataset.n_channels, 8, dataset.n_classes, key=jax.random.PRNGKey(5))
    x = jnp.asarray(xb, jnp.float32)
    y = jnp.asarray(yb)
    flat = []
    for method in ("bptt", config.method):
        _, grads = eqx.filter_jit(loss_and_grad)(model, x, y, parse_method(method))
        leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
        flat.append(np.concatenate([np.asarray(g, np.float64).ravel() for g in leaves]))
    want = flat[0] @ flat[1] / (np.linalg.norm(flat[0]) * np.linalg.norm(flat[1]))
    np.testing.assert_allclose(agreement["diagonal"]["cosine"], want, rtol=1e-5)


def test_reference_is_computed_but_not_trained_when_absent(tmp_path):
    config = TrainConfig(model="lif", hidden=8, epochs=1, batch=10, method="immediate")
    report = compare(["immediate"], config, _fake_dataset(), tmp_path, progress=False)
    runs = {r["method"]: r for r in report["runs"]}
    assert runs["immediate"]["trained"] and not runs["bptt"]["trained"]
    assert not (tmp_path / "bptt").exists()
    assert "bptt (reference, not trained)" in (tmp_path / "compare.md").read_text()


@pytest.mark.parametrize(
    "methods, named",
    [
        ("bptt,warp", "'warp'"),
        ("", "no methods"),
        ("bptt,,diagonal", "empty entry"),
        ("diagonal,bptt,Diagonal", "twice"),
        ("random-k", "'random-k'"),
    ],
)
def test_cli_bad_methods(methods, named, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    assert main(["compare", "--methods", methods, "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("snnplast compare: error:") and "\n" not in err
    assert named in err
    # Rejected before any data is loaded or generated.
    assert not (tmp_path / "never").exists() and not (tmp_path / "cache").exists()


def test_cli_lam_needs_an_online_method(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    assert main(["compare", "--methods", "bptt", "--lam", "0.5", "--out", str(tmp_path)]) == 2
    assert "0.5" in capsys.readouterr().err


def test_parse_methods_canonical_forms():
    assert parse_methods(" BPTT , diagonal,random-k:2") == ("bptt", "diagonal", "random-k:2")
    assert parse_methods(["immediate"]) == ("immediate",)
    with pytest.raises(ValueError, match="twice"):
        parse_methods("head-sparse:0.5,head-sparse:.50")
    with pytest.raises(TypeError):
        parse_methods([1, 2])


def test_a_diverged_run_is_reported_and_the_rest_go_on(tmp_path, monkeypatch, capsys):
    import snnplast.train._compare as compare_module

    def diverging_fit(config, dataset, out_dir, progress=True, model=None):
        raise FloatingPointError("training diverged in epoch 1: batch loss nan")

    monkeypatch.setattr(compare_module, "fit", diverging_fit)
    config = TrainConfig(model="lif", hidden=8, epochs=1, batch=10, method="immediate")
    report = compare("immediate", config, _fake_dataset(), tmp_path, progress=False)
    run = report["runs"][0]
    assert run["status"] == "diverged" and "batch loss nan" in run["error"]
    assert run["test_accuracy"] is None and run["curves"] == []
    assert "immediate (diverged)" in (tmp_path / "compare.md").read_text()
    assert (tmp_path / "compare.png").read_bytes()[:8] == PNG_SIGNATURE
    json.loads((tmp_path / "compare.json").read_text(), parse_constant=pytest.fail)
