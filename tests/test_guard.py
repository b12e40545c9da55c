"""The divergence guard: a non-finite loss or gradient stops the run with one line naming where
(or, with ``on_nan="skip"``, skips the batch and counts it), and the state on disk stays good."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnplast.data import SpikeDataset, Split
from snnplast.train import TrainConfig, _trainer, fit, load_model
from snnplast.train._checkpoint import read_checkpoint_header
from snnplast.train._guard import DivergenceError

N, BATCH, T, C, K = 24, 4, 10, 9, 3
MARKED = 5  # the training sample whose batch gets a NaN gradient
CONFIG = TrainConfig(model="rlif", hidden=8, epochs=2, batch=BATCH, lr=1e-2, seed=2,
                     channel_shift=0, eval_batch=8)


def _dataset():
    rng = np.random.default_rng(0)

    def split(n):
        y = np.arange(n, dtype=np.int32) % K
        x = rng.poisson(0.3, (n, T, C)).astype(np.uint8)
        return Split(x=x, y=y, speakers=np.zeros(n, np.int32))

    train = split(N)
    train.x[MARKED, 0, 0] = 255  # the marker; no other entry comes near it
    return SpikeDataset(train=train, val=split(6), test=split(6), n_classes=K, n_channels=C,
                        n_bins=T, class_names=("a", "b", "c"), source="fake")


def _poison(monkeypatch):
    """Make the readout weight's gradient NaN in any batch that holds the marked sample."""
    real = _trainer.loss_and_grad

    def loss_and_grad(model, x, y, method, *rest):
        (loss, scores), grads = real(model, x, y, method, *rest)
        hit = jnp.any(x[:, 0, 0] == 255)
        def where(g):
            return g.layers[1].weight

        poisoned = jnp.where(hit, jnp.nan, where(grads))
        return (loss, scores), eqx.tree_at(where, grads, poisoned)

    monkeypatch.setattr(_trainer, "loss_and_grad", loss_and_grad)


def _marked_step(seed):
    """Which step of epoch 1 trains the marked sample: the trainer's shuffle, redone here."""
    order = np.random.default_rng(seed).permutation(N)
    return int(np.flatnonzero(order == MARKED)[0]) // BATCH + 1


def test_nan_stops_the_run_naming_where_and_keeps_the_last_good_checkpoint(monkeypatch, tmp_path):
    _poison(monkeypatch)
    config = dataclasses.replace(CONFIG, method="diagonal")
    with pytest.raises(DivergenceError) as info:
        fit(config, _dataset(), tmp_path, progress=False, checkpoint_every=1)
    message = str(info.value)
    step = _marked_step(CONFIG.seed)
    assert "\n" not in message
    assert f"epoch 1, step {step} of {N // BATCH}" in message
    assert "method diagonal" in message
    assert "gradient of parameter .layers[1].weight" in message
    assert isinstance(info.value, FloatingPointError)
    state = read_checkpoint_header(tmp_path)["state"]
    assert (state["epoch"], state["step"]) == (1, step - 1)
    assert f"(epoch 1, step {step - 1})" in message


def test_nan_skip_skips_and_counts(monkeypatch, tmp_path):
    _poison(monkeypatch)
    config = dataclasses.replace(CONFIG, on_nan="skip")
    summary = fit(config, _dataset(), tmp_path, progress=False)
    # The marked sample is trained once per epoch (N is a multiple of the batch).
    assert summary["nan_skips"] == CONFIG.epochs
    records = [r for r in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == CONFIG.epochs and all('"skipped_batches": 1' in r for r in records)
    for leaf in jax.tree_util.tree_leaves(eqx.filter(load_model(tmp_path), eqx.is_array)):
        assert np.all(np.isfinite(leaf))


def test_skipped_step_changes_nothing(monkeypatch):
    """The compiled step itself: with a NaN gradient it returns its inputs, bit for bit."""
    _poison(monkeypatch)
    import optax

    from snnplast.train._sharding import DataParallel

    data = _dataset().train
    from snnplast.train import build_model

    model = build_model("rlif", C, 8, K, key=jax.random.PRNGKey(0))
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    step = _trainer._make_train_step(optimizer, "bptt", DataParallel(1).replicated)
    index = np.arange(MARKED - 1, MARKED - 1 + BATCH)
    new_model, new_state, loss, _, flags = step(model, opt_state, data.x[index], data.y[index])
    assert bool(flags[0]) and not bool(np.all(flags))
    for a, b in zip(jax.tree_util.tree_leaves((model, opt_state)),
                    jax.tree_util.tree_leaves((new_model, new_state)), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    good = np.arange(BATCH) + MARKED + 1
    changed, _, _, _, flags = step(model, opt_state, data.x[good], data.y[good])
    assert bool(np.all(flags))
    before, after = model.layers[1].weight, changed.layers[1].weight
    assert not np.array_equal(np.asarray(after), np.asarray(before))
