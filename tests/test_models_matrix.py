"""Built-in models and user cells with non-trainable arrays through every entry point.

A connectivity mask or an index array held as a jax array must reach the trace engine with its
values under snnplast's own jitted steps (``fit``, ``compare``'s gradient agreement), not as a
tracer."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import snnplast as sp
from snnplast._cli import main
from snnplast.data import SpikeDataset, Split
from snnplast.train import TrainConfig, fit, gradient_agreement, load_model
from snnplast.train._frozen import hold_static, rebuild

N_IN, HIDDEN, N_CLASSES, T = 6, 5, 3, 6


def _dataset() -> SpikeDataset:
    rng = np.random.default_rng(0)

    def split(n):
        y = np.arange(n, dtype=np.int32) % N_CLASSES
        rates = np.full((n, 1, N_IN), 0.1)
        for k in range(N_CLASSES):
            rates[y == k, :, 2 * k : 2 * k + 2] = 0.7
        x = rng.poisson(np.broadcast_to(rates, (n, T, N_IN))).astype(np.uint8)
        return Split(x=x, y=y, speakers=np.zeros(n, np.int32))

    return SpikeDataset(train=split(12), val=split(6), test=split(6), n_classes=N_CLASSES,
                        n_channels=N_IN, n_bins=T, class_names=("a", "b", "c"), source="fake")


class MaskedRNN(sp.Cell):
    """A recurrent tanh layer whose recurrent weights pass through a bool connectivity mask."""

    w_in: jax.Array
    w_rec: jax.Array
    mask: jax.Array  # bool [n, n]: a user's habit, a jax array field

    def initial_state(self):
        return jnp.zeros(self.w_rec.shape[0], self.w_rec.dtype)

    def __call__(self, h, x):
        h = jnp.tanh(self.w_in @ x + jnp.where(self.mask, self.w_rec, 0.0) @ h)
        return h, h


def _masked_rnn(key) -> MaskedRNN:
    k1, k2 = jax.random.split(key)
    mask = jnp.asarray(np.tril(np.ones((HIDDEN, HIDDEN), bool)))  # keep half the synapses
    return MaskedRNN(0.5 * jax.random.normal(k1, (HIDDEN, N_IN)),
                     0.5 * jax.random.normal(k2, (HIDDEN, HIDDEN)), mask)


def test_a_held_mask_reaches_the_engine_with_values_under_jit(getkey):
    """What fit's step does: the jitted function takes the trainable arrays and the rest held
    by value. Exact's gradient under it equals jax.grad of a Python loop (the mask shapes the
    step's Jacobians: a traced mask was a one-line refusal), and the held part compares by value
    (an equal mask reuses the compile, another one does not)."""
    cell = _masked_rnn(getkey())
    xs = jax.random.normal(getkey(), (4, N_IN))
    ys = jax.random.normal(getkey(), (4, HIDDEN))

    def loss(o, y):
        return jnp.sum((o - y) ** 2)

    def loop(c):
        h, total = c.initial_state(), 0.0
        for t in range(xs.shape[0]):
            h, o = c(h, xs[t])
            total = total + loss(o, ys[t])
        return total

    jitted = eqx.filter_jit(lambda params, held: sp.gradients(
        rebuild(params, held), xs, ys, loss=loss, method=sp.Exact()))
    got = jitted(*hold_static(cell))
    want = eqx.filter_jit(eqx.filter_grad(loop))(cell)
    for name in ("w_in", "w_rec"):
        np.testing.assert_allclose(np.asarray(getattr(got, name)),
                                   np.asarray(getattr(want, name)), rtol=1e-4, atol=1e-6)
    assert np.all(np.asarray(got.w_rec)[~np.asarray(cell.mask)] == 0)
    same = eqx.tree_at(lambda c: c.mask, cell, jnp.array(np.asarray(cell.mask)))
    other = eqx.tree_at(lambda c: c.mask, cell, ~cell.mask)
    held = hold_static(cell)[1]
    assert held == hold_static(same)[1] and hash(held) == hash(hold_static(same)[1])
    assert held != hold_static(other)[1]


@pytest.mark.slow
def test_a_user_cell_with_a_bool_mask_trains_online_through_fit(tmp_path, getkey):
    """The mask was a tracer in fit's jitted step (a one-line refusal); now Diagonal trains the
    cell and the mask comes back unchanged."""
    cell = _masked_rnn(getkey())
    config = TrainConfig(method="diagonal", epochs=1, batch=6, lr=1e-2, seed=0, eval_batch=6)
    data = _dataset()
    summary = fit(config, data, tmp_path / "run", progress=False, model=cell)
    assert summary["complete"] and summary["nan_skips"] == 0
    trained = load_model(tmp_path / "run", like=cell)
    hidden = trained.layers[0]
    assert hidden.mask.dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(hidden.mask), np.asarray(cell.mask))
    assert not np.allclose(np.asarray(hidden.w_rec), np.asarray(cell.w_rec))


@pytest.mark.slow
def test_exact_first_gradient_of_a_masked_user_cell_is_bptts(getkey):
    """The agreement gradient (compare's) of a cell with a bool mask: Exact equals BPTT."""
    config = TrainConfig(method="diagonal", epochs=1, batch=6, seed=0)
    agreement = gradient_agreement(config, _dataset(), ["exact"], model=_masked_rnn(getkey()))
    assert agreement["exact"]["cosine"] > 1 - 1e-5


@pytest.mark.slow
def test_columnar_trains_online_through_compare(tmp_path):
    """``snnplast compare --model columnar`` with online methods: the built-in Columnar holds its
    lateral mask as a bool array; Exact's first-step gradient is BPTT's."""
    out = tmp_path / "cmp"
    argv = ["compare", "--data", "synth", "--model", "columnar", "--methods", "exact,diagonal",
            "--epochs", "1", "--hidden", "4", "--bins", "6", "--batch", "16", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    runs = {r["method"]: r for r in json.loads((out / "compare.json").read_text())["runs"]}
    for method in ("exact", "diagonal"):
        assert runs[method]["status"] == "complete" and runs[method]["epochs_completed"] == 1, runs[method]
    assert runs["exact"]["cosine"] > 1 - 1e-5



@pytest.mark.slow
def test_bench_times_truncated_bptt(capsys):
    """``snnplast bench --method tbptt:W`` was a TypeError (it went down the online path); a
    window as long as the sequence is BPTT itself (cosine 1)."""
    argv = ["bench", "--model", "rnn", "--hidden", "4", "--inputs", "3", "--steps", "4",
            "--batch", "2", "--repeats", "1", "--method", "tbptt:4", "--json"]
    assert main(argv) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["mode"] == "truncated" and row["block"] is None
    assert row["cosine_vs_bptt"] == pytest.approx(1.0, abs=1e-5)


def test_bench_refuses_a_block_for_truncated_bptt_in_one_line(capsys):
    """A block has no meaning for truncated BPTT: one line naming what takes one (it was an
    unexpected TypeError, reported as a bug)."""
    argv = ["bench", "--model", "rnn", "--hidden", "4", "--inputs", "3", "--steps", "4",
            "--batch", "2", "--repeats", "1", "--method", "tbptt:2", "--block", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "block has no meaning for method 'tbptt:2' (only for online methods" in err
    assert len(err.splitlines()) == 1


@pytest.mark.slow
def test_online_learner_trains_a_masked_user_cell(getkey):
    """OnlineLearner's jitted update takes the whole model: its mask must reach the engine with
    values. The learner's first update equals ``snnplast.gradients`` (Exact) of that chunk under
    plain SGD, and the masked-out synapses never move."""
    import optax

    cell = _masked_rnn(getkey())
    xs = jax.random.normal(getkey(), (4, N_IN))
    ys = jax.random.normal(getkey(), (4, HIDDEN))

    def loss(o, y):
        return jnp.sum((o - y) ** 2)

    learner = sp.OnlineLearner(sp.Exact(), loss, optax.sgd(0.1), every=4)
    state = learner.init(cell, xs[0])
    trained, state, _ = learner.update(cell, state, xs, ys)
    assert int(state.updates) == 1
    grads = sp.gradients(cell, xs, ys, loss=loss, method=sp.Exact())
    np.testing.assert_allclose(np.asarray(trained.w_rec),
                               np.asarray(cell.w_rec - 0.1 * grads.w_rec), rtol=1e-5, atol=1e-6)
    off = ~np.asarray(cell.mask)
    np.testing.assert_array_equal(np.asarray(trained.w_rec)[off], np.asarray(cell.w_rec)[off])
