"""The training stage: model factory, objective, gradient dispatch, ``fit`` and ``snnplast train``."""

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import snnplast
from snnplast._cli import main
from snnplast.data import SpikeDataset, Split
from snnplast.train import (
    MODELS,
    TrainConfig,
    batch_objective,
    build_model,
    cross_entropy,
    fit,
    load_model,
    loss_and_grad,
    parse_method,
    sample_objective,
)

N_CLASSES, T, C = 3, 20, 16
TIMING_KEYS = {"seconds", "train_seconds"}


def _split(rng, n):
    """Class k fires mostly on its own third of the channels (Poisson counts, uint8)."""
    y = np.arange(n, dtype=np.int32) % N_CLASSES
    rates = np.full((n, 1, C), 0.05)
    for k in range(N_CLASSES):
        rates[y == k, :, k * (C // N_CLASSES) : (k + 1) * (C // N_CLASSES)] = 0.6
    x = rng.poisson(np.broadcast_to(rates, (n, T, C))).astype(np.uint8)
    return Split(x=x, y=y, speakers=np.zeros(n, np.int32))


def _fake_dataset(seed=0) -> SpikeDataset:
    rng = np.random.default_rng(seed)
    return SpikeDataset(
        train=_split(rng, 60),
        val=_split(rng, 30),
        test=_split(rng, 30),
        n_classes=N_CLASSES,
        n_channels=C,
        n_bins=T,
        class_names=("a", "b", "c"),
        source="fake",
    )


CONFIG = TrainConfig(model="lif", hidden=16, epochs=2, batch=6, lr=1e-2, seed=3, eval_batch=16)


def _metrics(out_dir):
    with open(out_dir / "metrics.jsonl") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, fit(CONFIG, _fake_dataset(), out, progress=False)


# --- model factory --------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_build_model_runs_every_name(name, getkey):
    model = build_model(name, C, 8, N_CLASSES, key=getkey())
    assert isinstance(model, snnplast.Sequential) and isinstance(model[-1], snnplast.LI)
    _, out = snnplast.unroll(model, jnp.ones((T, C)))
    assert out.shape == (T, N_CLASSES) and bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize("name", ["lif", "alif", "rlif", "ralif"])
def test_spiking_models_fire_on_shd_like_input(name, getkey):
    # ~17 spikes per bin over 140 channels, as in SHD pooled to 140 channels and 14 ms bins.
    x = jax.random.poisson(getkey(), 17 / 140, (100, 140)).astype(jnp.float32)
    model = build_model(name, 140, 64, 20, key=getkey())
    _, z = snnplast.unroll(model[0], x)
    assert 0.005 < float(jnp.mean(z)) < 0.5


def test_build_model_unknown_name(getkey):
    with pytest.raises(ValueError, match="'foo'.*lif, alif, rlif, ralif, rnn, lstm, gru"):
        build_model("foo", C, 8, N_CLASSES, key=getkey())


# --- objective and the gradient dispatch ----------------------------------------------------


def test_sample_objective_is_sequence_loss(getkey):
    model = build_model("rlif", C, 8, N_CLASSES, key=getkey())
    x = _fake_dataset().train.x[0].astype(np.float32)
    label = jnp.asarray(2, jnp.int32)
    loss, scores = sample_objective(model, x, label)
    want = snnplast.sequence_loss(model, x, jnp.full((T,), 2, jnp.int32), cross_entropy)
    np.testing.assert_allclose(loss, want, rtol=1e-6)
    _, outputs = snnplast.unroll(model, x)
    np.testing.assert_allclose(scores, outputs.sum(0), rtol=1e-6)


def test_loss_and_grad_bptt_is_grad_of_batch_mean(getkey):
    model = build_model("gru", C, 8, N_CLASSES, key=getkey())
    data = _fake_dataset().train
    x, y = jnp.asarray(data.x[:4], jnp.float32), jnp.asarray(data.y[:4])
    (loss, scores), grads = loss_and_grad(model, x, y, "bptt")
    assert scores.shape == (4, N_CLASSES)

    def mean_loss(m):
        per_sample = jax.vmap(
            lambda xi, yi: snnplast.sequence_loss(m, xi, jnp.full((T,), yi), cross_entropy)
        )(x, y)
        return jnp.mean(per_sample)

    want_loss, want = eqx.filter_value_and_grad(mean_loss)(model)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    for g, w in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_loss_and_grad_unknown_method(getkey):
    model = build_model("lif", C, 8, N_CLASSES, key=getkey())
    x, y = jnp.zeros((2, T, C)), jnp.zeros(2, jnp.int32)
    with pytest.raises(ValueError, match="'diagonal'"):
        loss_and_grad(model, x, y, "diagonal")  # a string: parse_method makes the policy


def test_parse_method():
    assert parse_method("bptt") == "bptt"
    assert parse_method(" BPTT ") == "bptt"
    assert parse_method("random-k:4", 0.5) == snnplast.RandomK(k=4, lam=0.5)
    assert parse_method("head-sparse:0.5") == snnplast.HeadSparse(fraction=0.5)
    assert isinstance(parse_method("diagonal"), snnplast.Diagonal)
    with pytest.raises(ValueError, match="'warp:4'.*bptt"):
        parse_method("warp:4")
    with pytest.raises(ValueError, match="needs an argument"):
        parse_method("random-k")
    with pytest.raises(ValueError, match="'x' is not a valid int"):
        parse_method("random-k:x")
    with pytest.raises(ValueError, match=r"lam must be a number in \[0, 1\]"):
        parse_method("diagonal", 1.5)


# --- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("batch", 0),
        ("hidden", -1),
        ("hidden", 2.5),
        ("lr", 0.0),
        ("lr", math.nan),
        ("model", "foo"),
        ("method", "warp"),
        ("lam", 0.5),
        ("seed", -1),
        ("schedule", "linear"),
        ("channel_shift", -1),
        ("pool", 0),
        ("time_axis", "words"),
    ],
)
def test_config_rejects(field, value):
    with pytest.raises(ValueError, match=repr(value).replace(".", r"\.")) as info:
        TrainConfig(**{field: value})
    assert "\n" not in str(info.value)


def test_cosine_schedule_decays_to_zero_over_the_run():
    """The cosine schedule starts at the peak rate and falls towards 0 by the last step: Adam's
    first update moves a weight by lr, step k (of n) by lr (1 + cos(pi k / n)) / 2."""
    from snnplast.train import make_optimizer

    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.array([1.0, -2.0, 0.5])}
    cosine_last = 0.1 * (1 + math.cos(math.pi * 9 / 10)) / 2
    for schedule, last in (("cosine", cosine_last), ("constant", 0.1)):
        opt = make_optimizer(0.1, schedule, total_steps=10)
        state = opt.init(params)
        sizes = []
        with jax.numpy_dtype_promotion("standard"):
            for _ in range(10):
                updates, state = opt.update(grads, state, params)
                sizes.append(float(jnp.max(jnp.abs(updates["w"]))))
        assert sizes[0] == pytest.approx(0.1, rel=1e-4)
        assert sizes[-1] == pytest.approx(last, rel=1e-3)
        if schedule == "cosine":
            assert all(a > b for a, b in zip(sizes, sizes[1:]))


def test_channel_shift_moves_each_sample_and_fills_zeros():
    from snnplast.train._augment import random_channel_shift, shift_channels

    rng = np.random.default_rng(0)
    x = rng.integers(1, 9, size=(4, 3, 7)).astype(np.uint8)
    shifts = np.array([0, 2, -3, 7])
    out = shift_channels(x, shifts)
    expected = np.zeros_like(x)
    for b, s in enumerate(shifts):
        for c in range(7):
            if 0 <= c - s < 7:
                expected[b, :, c] = x[b, :, c - s]
    assert out.dtype == x.dtype and np.array_equal(out, expected)
    # No shift is the data itself, and draws nothing: runs without it are unchanged.
    state = rng.bit_generator.state
    assert random_channel_shift(x, 0, rng) is x and rng.bit_generator.state == state
    shifted = random_channel_shift(x, 2, rng)
    assert shifted.shape == x.shape and not np.array_equal(shifted, x)


def test_config_round_trip():
    assert TrainConfig.from_dict(CONFIG.to_dict()) == CONFIG
    with pytest.raises(ValueError, match="colour"):
        TrainConfig.from_dict({**CONFIG.to_dict(), "colour": "red"})


# --- fit ------------------------------------------------------------------------------------


def test_fit_learns(trained):
    _, summary = trained
    # Chance is 1/3; the classes differ in which channels fire.
    assert summary["test_accuracy"] > 0.7
    assert summary["val_accuracy"] > 0.7


def test_fit_writes_files(trained):
    out, summary = trained
    records = _metrics(out)
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        assert {"train_loss", "train_accuracy", "val_accuracy", "test_accuracy"} <= r.keys()
        assert r["seconds"] > 0
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    assert summary["complete"] and summary["epochs_completed"] == 2
    # The record names the data's own bins (CONFIG leaves n_bins at its default of 100).
    assert summary["config"] == {**CONFIG.to_dict(), "n_bins": T}
    assert summary["peak_memory_bytes"] > 0
    assert summary["step_temp_bytes"] is None or summary["step_temp_bytes"] > 0
    assert summary["wall_seconds"] >= 2 * summary["seconds_per_epoch"] > 0
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_saved_model_reproduces_test_accuracy(trained):
    out, summary = trained
    model = load_model(out)
    test = _fake_dataset().test
    _, scores = batch_objective(model, jnp.asarray(test.x, jnp.float32), jnp.asarray(test.y))
    accuracy = float(jnp.mean((jnp.argmax(scores, -1) == test.y).astype(jnp.float32)))
    assert accuracy == pytest.approx(summary["test_accuracy"])


def test_fit_is_deterministic(trained, tmp_path):
    out, _ = trained
    fit(CONFIG, _fake_dataset(), tmp_path, progress=False)

    def strip(records):
        return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]

    assert strip(_metrics(tmp_path)) == strip(_metrics(out))


def test_fit_rejects_mismatched_data(tmp_path):
    data = _fake_dataset()
    wrong = SpikeDataset(**{**data.__dict__, "n_channels": C + 1})
    with pytest.raises(ValueError, match=str(C + 1)):
        fit(CONFIG, wrong, tmp_path, progress=False)


# --- command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, named",
    [
        (["--epochs", "0"], "0"),
        (["--model", "foo"], "'foo'"),
        (["--method", "magic"], "'magic'"),
        (["--lam", "0.5"], "0.5"),
        (["--lr", "-1"], "-1"),
        (["--pool", "0"], "pool must be"),
        (["--time-axis", "clip"], "'clip'"),
    ],
)
def test_cli_bad_arguments(args, named, capsys, tmp_path):
    assert main(["train", *args, "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("snnplast train: error:") and "\n" not in err
    assert named in err
    assert not (tmp_path / "never").exists()


def test_bare_train_is_the_documented_default_run():
    """`snnplast train` with no options trains TrainConfig() on the spoken digits (the README
    states its accuracy for exactly this run)."""
    from snnplast._cli import build_parser
    from snnplast._cli._train import config_from_args
    from snnplast.data import DEFAULT_DATA

    for command in ("train", "compare"):
        argv = [command] + (["--methods", "bptt"] if command == "compare" else [])
        args = build_parser().parse_args(argv)
        assert args.data == DEFAULT_DATA == "speech"
        assert config_from_args(args, "bptt") == TrainConfig()
    assert (TrainConfig().model, TrainConfig().method) == ("ralif", "bptt")


def test_cli_trains_on_a_folder_of_shd_files(tmp_path, monkeypatch, capsys):
    from snnplast import data

    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "shd"
    data.make_synth_shd(folder, n_per_class_train=3, n_per_class_test=1)
    out = tmp_path / "run"
    argv = ["train", "--data", str(folder), "--model", "rlif", "--hidden", "8", "--epochs", "1"]
    argv += ["--batch", "16", "--bins", "20", "--no-progress", "--out", str(out)]
    argv += ["--pool", "25", "--time-axis", "word"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and str(out) in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["n_bins"] == 20 and summary["dataset"]["n_classes"] == 20
    # The options reach the data: 700 channels pooled 25 to one, bins on the word axis.
    assert summary["dataset"]["n_channels"] == 28 and summary["model"]["n_in"] == 28
    assert (summary["config"]["pool"], summary["config"]["time_axis"]) == (25, "word")
    assert summary["config"]["data"] == str(folder)
    assert (out / "model.eqx").is_file() and len(_metrics(out)) == 1


# --- online methods through the trainer -------------------------------------------------------


@pytest.mark.parametrize("method", ["diagonal", "immediate"])
def test_fit_learns_online(method, tmp_path):
    config = TrainConfig(model="rlif", hidden=16, epochs=2, batch=6, lr=1e-2, seed=3,
                         eval_batch=16, method=method)
    summary = fit(config, _fake_dataset(), tmp_path, progress=False)
    assert summary["test_accuracy"] > 0.7
    assert summary["config"]["method"] == method


def test_online_loss_and_grad_matches_bptt_for_exact(getkey):
    model = build_model("rlif", C, 8, N_CLASSES, key=getkey())
    data = _fake_dataset().train
    x, y = jnp.asarray(data.x[:4], jnp.float32), jnp.asarray(data.y[:4])
    (lb, sb), gb = loss_and_grad(model, x, y, "bptt")
    (le, se), ge = loss_and_grad(model, x, y, snnplast.Exact())
    np.testing.assert_allclose(le, lb, rtol=1e-5)
    np.testing.assert_allclose(se, sb, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(ge), jax.tree_util.tree_leaves(gb)):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-5)


def test_cli_inspect(capsys):
    from snnplast._cli import main

    assert main(["inspect", "--model", "ralif", "--hidden", "8", "--inputs", "6",
                 "--classes", "3"]) == 0
    out = capsys.readouterr().out
    assert "constant-diagonal" in out and "derived" in out
    assert "traces under diagonal" in out and "dense RTRL" in out
    # ALIF's adaptation trace is per synapse: blocks by default, the whole of a short sequence.
    assert "by default: one block up to" in out
    # Exact runs step by step: its dense traces keep a product per step, the readout's do not.
    assert "trace contractions: 2 of 8 traces" in out
    capsys.readouterr()
    # Methods without traces are one line each, not a traceback (tbptt's was one).
    for method in ("bptt", "tbptt:3"):
        assert main(["inspect", "--model", "lif", "--policies", f"diagonal,{method}"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"snnplast inspect: error: --policies {method}: takes online methods "
                       "only (bptt and tbptt:WINDOW differentiate the unrolled steps and keep no "
                       "trace)")  # fmt: skip
