"""Every paper experiment in benchmarks/ (and trace_order.py) runs end to end in a tiny
configuration (slow)."""

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"

TINY = {
    "exp_random_k_default": ["--n", "4", "--steps", "40", "--seeds", "1"],
    "exp_frequency_shift": ["--n", "4", "--ks", "0,2,4", "--steps", "40", "--seeds", "2"],
    "exp_scaling": ["--ns", "4,6", "--steps", "40", "--seeds", "2"],
    "exp_selection": ["--n", "6", "--steps", "40", "--seeds", "2", "--readout", "fixed",
                      "--lr", "1e-3"],
    "exp_lorenz": ["--n", "4", "--steps", "40", "--seeds", "2"],
    "exp_immediate": ["--n", "4", "--steps", "40", "--seeds", "2", "--memory-ns", "4,8",
                      "--measure-up-to", "4"],
    "exp_columnar": ["--seeds", "2", "--ratios", "0,1", "--windows", "1,3",
                     "--meta-windows", "2"],
    "exp_diagnostics": ["--n", "6", "--steps", "60", "--window", "25", "--seeds", "1",
                        "--ks", "2"],
    "exp_lstm_heads": ["--n", "4", "--heads", "2", "--d-model", "4", "--fractions", "0.5,1",
                       "--steps", "40", "--seeds", "2"],
    "exp_speech": ["--data", "synth", "--epochs", "1", "--hidden", "8", "--seeds", "1",
                   "--methods", "bptt,tbptt:3"],
    "trace_order": ["--hidden", "4", "--inputs", "5", "--batch", "2", "--steps", "3",
                    "--repeats", "1", "--methods", "random-k:2"],
}


@pytest.fixture
def bench_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    yield
    for name in [*TINY, "_experiments"]:
        sys.modules.pop(name, None)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(TINY))
def test_experiment_runs_tiny(script, bench_path, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    mod = importlib.import_module(script)
    argv = [*TINY[script], "--out", str(tmp_path / "out")]
    if script == "exp_speech":
        argv += ["--runs", str(tmp_path / "runs")]
    mod.main(argv)
    files = sorted((tmp_path / "out").iterdir())
    stems = {f.stem for f in files}
    assert len(stems) == 1, files
    (stem,) = stems
    md = (tmp_path / "out" / f"{stem}.md").read_text()
    data = json.loads((tmp_path / "out" / f"{stem}.json").read_text())
    assert (tmp_path / "out" / f"{stem}.png").stat().st_size > 1000
    assert data["meta"]["command"].startswith(f"python benchmarks/{script}.py")
    assert data["meta"]["commit"] and data["meta"]["commit"] in md
    assert md.count("\n|") >= 3  # a table: header, rule, at least one row
    if script == "exp_speech":  # the tables again from the same runs, naming how they were made
        mod.main([*argv, "--gather"])
        again = (tmp_path / "out" / f"{stem}.md").read_text()
        assert "Gathered from runs trained by `python benchmarks/exp_speech.py" in again
        assert again.split("\n|", 1)[1].split("\n\n")[0] == md.split("\n|", 1)[1].split("\n\n")[0]


def test_recovery_definition(bench_path):
    ex = importlib.import_module("_experiments")
    assert ex.recovery(1.0, 3.0, 1.0) == 1.0  # as good as the reference
    assert ex.recovery(3.0, 3.0, 1.0) == 0.0  # no better than the baseline
    assert ex.recovery(2.0, 3.0, 1.0) == 0.5
    res = {"a": {"post_shift_mse": [3.0, 4.0]}, "b": {"post_shift_mse": [1.0, 2.0]},
           "c": {"post_shift_mse": [2.0, 2.0]}}
    rec = ex.recoveries(res, "a", "b")
    assert rec["c"] == [0.5, 1.0]
    m, s, bad = ex.mean_sd([1.0, float("nan"), 3.0])
    assert (m, bad) == (2.0, 1) and s == pytest.approx(2**0.5)


def test_fixed_readout_keeps_the_readout(bench_path):
    """``--readout fixed``: the readout's parameters get zero updates, the rest the optimizer's."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    ex = importlib.import_module("_experiments")
    model = ex.elman(3, jax.random.PRNGKey(0))
    params = eqx.filter(model, eqx.is_inexact_array)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    tx = ex.fixed_readout(ex.OPTIMIZERS["sgd"](0.5))
    updates, _ = tx.update(grads, tx.init(params), params)
    for leaf in jax.tree_util.tree_leaves(updates.layers[-1]):
        assert float(jnp.max(jnp.abs(leaf))) == 0.0
    for leaf in jax.tree_util.tree_leaves(updates.layers[0]):
        assert float(jnp.min(leaf)) == -0.5 and float(jnp.max(leaf)) == -0.5
    tx = ex.fixed_readout(ex.OPTIMIZERS["sgd"](0.5), only=True)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert all(float(jnp.max(jnp.abs(a))) == 0.0
               for a in jax.tree_util.tree_leaves(updates.layers[0]))
    assert all(float(jnp.min(a)) == -0.5 for a in jax.tree_util.tree_leaves(updates.layers[-1]))
    with pytest.raises(ValueError, match="readout"):
        ex.online_run(model, None, jnp.zeros((2, 1)), jnp.zeros((2, 1)), readout="frozen")


@pytest.mark.slow
def test_speech_cosines_only_tiny(bench_path, tmp_path, monkeypatch):
    """``exp_speech.py --cosines-only``: a table of per-parameter cosines, no training."""
    monkeypatch.setenv("MPLBACKEND", "Agg")
    mod = importlib.import_module("exp_speech")
    per_seed = mod.main(["--cosines-only", "--data", "synth", "--hidden", "8", "--seeds", "2",
                         "--methods", "bptt,random-k:4,diagonal", "--out", str(tmp_path)])
    assert len(per_seed) == 2 and set(per_seed[0]) == {"bptt", "random-k:4", "diagonal"}
    assert per_seed[0]["bptt"]["cosine"] == pytest.approx(1.0)
    md = (tmp_path / "speech_synth_h8_cosines.md").read_text()
    assert "| random-k:4 |" in md and "w_rec" in md
