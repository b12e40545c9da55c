"""Cells as Equinox users write them: Equinox's own layers in the step, a custom
``__init__(..., *, key)``, static hyperparameters, states that are dicts, NamedTuples or
``eqx.Module``s, NumPy weights, a jitted step; and the mistakes such users make (a step that
returns its new state alone, as ``eqx.nn.GRUCell`` does; a tuple as the output under the
readout), each said in one line. Gradients against ``jax.grad`` of a Python loop in float64."""

import json
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import f64, loop_reference, rel, sq
from user_cells import EqxGRU, EqxLSTM  # Equinox's GRUCell and LSTMCell, wrapped

import snnplast as sp
from snnplast.train import complete_model, load_model

N_IN, HIDDEN, STEPS = 3, 4, 6
spike = sp.surrogates.FastSigmoid()


class LinearLIF(sp.Cell):
    """``eqx.nn.Linear`` with a bias for the input and without one for the recurrence, a dict
    state and a static leak."""

    fc: eqx.nn.Linear
    rec: eqx.nn.Linear
    alpha: float = eqx.field(static=True)

    def __init__(self, n_in, hidden, *, key, alpha=0.9):
        k1, k2 = jax.random.split(key)
        self.fc = eqx.nn.Linear(n_in, hidden, key=k1)
        self.rec = eqx.nn.Linear(hidden, hidden, use_bias=False, key=k2)
        self.alpha = alpha

    def initial_state(self):
        return {"v": jnp.zeros(self.fc.out_features), "z": jnp.zeros(self.fc.out_features)}

    def __call__(self, s, x):
        v = self.alpha * s["v"] + self.fc(x) + self.rec(s["z"])
        z = spike(v - 1.0)
        return {"v": v - jax.lax.stop_gradient(z), "z": z}, z


class Normed(sp.Cell):
    """An ``eqx.nn.MLP`` encoder, then ``eqx.nn.LayerNorm`` or ``eqx.nn.RMSNorm`` in the
    recurrence; the output (size ``hidden // 2``) is smaller than the state."""

    mlp: eqx.nn.MLP
    norm: eqx.Module
    w_out: jax.Array
    decay: float = eqx.field(static=True)

    def __init__(self, n_in, hidden, *, key, norm="layer", decay=0.7):
        k1, k2 = jax.random.split(key)
        self.mlp = eqx.nn.MLP(n_in, hidden, 5, 1, activation=jax.nn.relu, key=k1)
        self.norm = eqx.nn.LayerNorm(hidden) if norm == "layer" else eqx.nn.RMSNorm(hidden)
        self.w_out = jax.random.normal(k2, (hidden // 2, hidden)) / hidden**0.5
        self.decay = decay

    def initial_state(self):
        return jnp.zeros(self.mlp.out_size)

    def __call__(self, h, x):
        h = jnp.tanh(self.norm(self.decay * h + self.mlp(x)))
        return h, self.w_out @ h


class Currents(eqx.Module):
    v: jax.Array
    i: jax.Array


class CurrentsTuple(NamedTuple):
    v: jax.Array
    i: jax.Array


class CurrentLIF(sp.Cell):
    """A current-based LIF whose state is an ``eqx.Module`` or a ``NamedTuple`` (`kind`), with
    weights made by NumPy (float64 where JAX computes in float32) and a jitted step."""

    w: jax.Array
    kind: type = eqx.field(static=True)

    def __init__(self, n_in, hidden, *, key, kind=Currents):
        seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
        self.w = np.random.default_rng(seed).standard_normal((hidden, n_in)) / np.sqrt(n_in)
        self.kind = kind

    def initial_state(self):
        return self.kind(jnp.zeros(self.w.shape[0]), jnp.zeros(self.w.shape[0]))

    @eqx.filter_jit
    def __call__(self, s, x):
        i = 0.8 * s.i + self.w @ x
        v = 0.9 * s.v + i
        z = spike(v - 1.0)
        return self.kind(v - jax.lax.stop_gradient(z) * v, i), z


def make_gru(n_in, hidden, *, key):
    return EqxGRU(n_in, hidden, key=key)


def make_lstm(n_in, hidden, *, key):
    return EqxLSTM(n_in, hidden, key=key)


def make_linear(n_in, hidden, *, key):
    return LinearLIF(n_in, hidden, key=key)


def make_layer_norm(n_in, hidden, *, key):
    return Normed(n_in, hidden, key=key, norm="layer")


def make_rms_norm(n_in, hidden, *, key):
    return Normed(n_in, hidden, key=key, norm="rms")


def make_module_state(n_in, hidden, *, key):
    return CurrentLIF(n_in, hidden, key=key, kind=Currents)


def make_named_tuple(n_in, hidden, *, key):
    return CurrentLIF(n_in, hidden, key=key, kind=CurrentsTuple)


# name: (factory, whether no state couples neurons across steps, so that e-prop is exact)
CELLS = {
    "gru": (make_gru, False), "lstm": (make_lstm, False), "linear": (make_linear, False),
    "layer_norm": (make_layer_norm, False), "rms_norm": (make_rms_norm, False),
    "module_state": (make_module_state, True), "named_tuple": (make_named_tuple, True),
}  # fmt: skip
FAST = set()  # each ~3-4 s; the list state below is the default run's


def _problem(cell, key):
    k1, k2 = jax.random.split(key)
    xs = jax.random.normal(k1, (STEPS, N_IN), jnp.float64) * 1.5
    _, outs = jax.lax.scan(lambda s, x: cell(s, x), cell.initial_state(), xs)
    return xs, jax.random.normal(k2, outs.shape, jnp.float64)


def _grad(cell, xs, ys, method, loss=sq):
    return eqx.filter(sp.gradients(cell, xs, ys, loss=loss, method=method), eqx.is_inexact_array)


@pytest.mark.parametrize("name", [
    n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in CELLS])
def test_equinox_cells_equal_the_loop_reference(name, x64, getkey):
    make, local = CELLS[name]
    cell = f64(make(N_IN, HIDDEN, key=getkey()))
    xs, ys = _problem(cell, getkey())
    ref = loop_reference(cell, xs, ys)
    assert rel(_grad(cell, xs, ys, "bptt"), ref) <= 1e-10
    assert rel(_grad(cell, xs, ys, sp.Exact()), ref) <= 1e-10
    if local:
        assert rel(_grad(cell, xs, ys, sp.Diagonal()), ref) <= 1e-10
    else:  # an approximation, so the check above can tell
        assert rel(_grad(cell, xs, ys, sp.Diagonal()), ref) > 1e-6


class Polarities(sp.Cell):
    """Inputs ``[2, n_in]`` (ON and OFF events), a list as the state."""

    w: jax.Array

    def initial_state(self):
        return [jnp.zeros(self.w.shape[0]), jnp.zeros(self.w.shape[0])]

    def __call__(self, s, x):
        i = 0.8 * s[1] + jnp.einsum("hcn,cn->h", self.w, x)
        v = 0.9 * s[0] + i
        z = spike(v - 1.0)
        return [v - jax.lax.stop_gradient(z) * v, i], z


@pytest.mark.parametrize("method", [  # neuron-local: e-prop is exact
    sp.Diagonal(), pytest.param(sp.Exact(), marks=pytest.mark.slow)])
def test_inputs_with_a_channel_axis_and_a_list_state(method, x64, getkey):
    cell = f64(Polarities(jax.random.normal(getkey(), (HIDDEN, 2, N_IN))))
    xs = jax.random.normal(getkey(), (STEPS, 2, N_IN), jnp.float64)
    ys = jax.random.normal(getkey(), (STEPS, HIDDEN), jnp.float64)
    assert sp.derive(cell, xs[0]).h_class(0, 0) == "diagonal"
    assert rel(_grad(cell, xs, ys, method), loop_reference(cell, xs, ys)) <= 1e-10


class TwoOutputs(sp.Cell):
    """Spikes and potential as the output: a tuple, or a dict (`as_dict`)."""

    w: jax.Array
    as_dict: bool = eqx.field(static=True, default=False)

    def initial_state(self):
        return jnp.zeros(self.w.shape[0])

    def __call__(self, v, x):
        v = 0.9 * v + self.w @ x
        z = spike(v - 1.0)
        v = v - jax.lax.stop_gradient(z) * v
        return v, ({"spikes": z, "v": v} if self.as_dict else (z, v))


@pytest.mark.slow
def test_a_tuple_output_trains_under_a_loss_of_ones_own(x64, getkey):
    cell = f64(TwoOutputs(jax.random.normal(getkey(), (HIDDEN, N_IN))))
    xs = jax.random.normal(getkey(), (STEPS, N_IN), jnp.float64) * 1.5
    ys = (jax.random.normal(getkey(), (STEPS, HIDDEN)), jnp.zeros((STEPS, HIDDEN)))

    def loss(out, y):
        (z, v), (target, _) = out, y
        return jnp.sum((z - target) ** 2) + 0.1 * jnp.sum(v**2)

    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def total(p):  # the Python loop, targets indexed leaf by leaf
        c, s, acc = eqx.combine(p, static), cell.initial_state(), 0.0
        for t in range(STEPS):
            s, out = c(s, xs[t])
            acc = acc + loss(out, jax.tree_util.tree_map(lambda a, t=t: a[t], ys))
        return acc

    ref = jax.grad(total)(params)
    for method in ("bptt", sp.Exact(), sp.Diagonal()):
        assert rel(_grad(cell, xs, ys, method, loss), ref) <= 1e-10, method


@pytest.mark.parametrize("as_dict", [False, True])
def test_a_tuple_output_under_the_readout_is_one_line(as_dict, getkey):
    cell = TwoOutputs(jax.random.normal(getkey(), (HIDDEN, N_IN)), as_dict=as_dict)
    kind = "dict" if as_dict else "tuple"
    with pytest.raises(sp.ValidationError, match=rf"^model TwoOutputs outputs a {kind} per step "
                       r"\(\(4,\), \(4,\)\); the readout needs one array") as info:
        complete_model(cell, N_IN, 3, key=getkey())
    assert "\n" not in str(info.value)


class StateAlone(EqxGRU):
    """The mistake: the new state returned alone, as Equinox's GRUCell returns it."""

    def __call__(self, h, x):
        return self.gru(x, h)


class ListForTuple(EqxLSTM):
    def initial_state(self):
        h = jnp.zeros(self.lstm.hidden_size)
        return [h, h]


class Broadcast(EqxGRU):
    def __call__(self, h, x):
        h = self.gru(x, h)[:, None] * jnp.ones(2)
        return h, h


@pytest.mark.parametrize("cell_type, hidden, message", [
    (StateAlone, 4, (r"one step of StateAlone returned an array of shape \(4,\); a Cell's "
                     r"__call__\(state, x\) returns the pair \(new_state, output\)")),
    # a state of length 2 was unpacked into (h[0], h[1]) without a word before
    (StateAlone, 2, r"one step of StateAlone returned an array of shape \(2,\)"),
    (ListForTuple, 4, (r"returns a state structured as PyTreeDef\(\(\*, \*\)\), but "
                       r"initial_state\(\) gives PyTreeDef\(\[\*, \*\]\)")),
    (Broadcast, 4, r"turns the state of shape \(4,\) \(initial_state\(\)\) into shape \(4, 2\)"),
])  # fmt: skip
def test_a_step_that_breaks_the_contract_is_one_line_everywhere(cell_type, hidden, message,
                                                                 getkey):
    cell = cell_type(N_IN, hidden, key=getkey())
    xs, ys = jnp.ones((STEPS, N_IN)), jnp.zeros((STEPS, hidden))
    calls = {
        "derive": lambda: sp.derive(cell, xs[0]),
        "bptt": lambda: sp.gradients(cell, xs, ys, loss=sq),
        "diagonal": lambda: sp.gradients(cell, xs, ys, loss=sq, method=sp.Diagonal()),
        "fit's network": lambda: complete_model(cell, N_IN, 3, key=getkey()),
    }
    for what, call in calls.items():
        with pytest.raises(sp.ValidationError, match=message) as info:
            call()
        assert "\n" not in str(info.value), what


def test_numpy_weights_become_jax_arrays_and_a_saved_run_reloads(tmp_path, getkey):
    """float64 NumPy weights are trained as float32 (JAX's default): the network fit builds
    holds them so, and a run saved from it reads back over the object given to fit."""
    from snnplast.train._checkpoint import save_model
    from snnplast.train._network import network

    cell = make_module_state(N_IN, HIDDEN, key=getkey())
    assert isinstance(cell.w, np.ndarray) and cell.w.dtype == np.float64
    net, spec = network(cell, 0, HIDDEN, N_IN, 3)
    assert isinstance(net.layers[0].w, jax.Array) and net.layers[0].w.dtype == jnp.float32
    assert spec["readout_added"] is True
    trained = eqx.tree_at(lambda n: n.layers[0].w, net, net.layers[0].w + 1.0)
    save_model(tmp_path, trained, spec)
    loaded = load_model(tmp_path, like=cell)  # was Equinox's RuntimeError: float64 vs float32
    np.testing.assert_array_equal(loaded.layers[0].w, trained.layers[0].w)
    whole = sp.Sequential([cell, sp.LI(HIDDEN, 3, key=getkey())])
    assert complete_model(whole, N_IN, 3, key=getkey()).layers[0].w.dtype == jnp.float32


def test_a_float32_run_loads_where_x64_is_on(tmp_path):
    """A run of a factory whose weights take JAX's default dtype (Equinox's layers), trained
    without x64, reloads where x64 makes that factory build float64: exactly, in float64."""
    from snnplast.train._checkpoint import save_model
    from snnplast.train._network import network

    net, spec = network(f"{__file__}:make_gru", 0, HIDDEN, N_IN, 3)
    save_model(tmp_path, net, spec)
    jax.config.update("jax_enable_x64", True)
    try:
        loaded = load_model(tmp_path)  # was Equinox's RuntimeError: float64 vs float32 on disk
    finally:
        jax.config.update("jax_enable_x64", False)
    assert loaded.layers[0].gru.weight_ih.dtype == jnp.float64
    for a, b in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(net)):
        assert b.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b, np.float64))


def _float_dtypes(tree):
    return {leaf.dtype for leaf in jax.tree_util.tree_leaves(tree)
            if isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct))
            and jnp.issubdtype(leaf.dtype, jnp.inexact)}


@pytest.mark.parametrize("name", [
    "lif", "ralif", "rnn", "lstm", "gru", "attention", "readout",
    pytest.param("columnar", marks=pytest.mark.slow),  # made eagerly (a NumPy mask): 3 s
])  # fmt: skip
def test_built_in_models_are_in_one_precision_where_x64_is_on(name, x64):
    """Biases and gains were float64 beside float32 weights under x64, so that every step of
    LI, RNN, GRU, LSTM, attention or columnar changed its state's dtype: gradients refused them
    and fit failed deep in lax.scan, the default network included (its LI readout)."""
    from snnplast.train import MODELS

    key = jax.random.PRNGKey(0)
    if name == "readout":
        made = eqx.filter_eval_shape(lambda: sp.LI(N_IN, 3, key=key))
    elif name == "columnar":
        made = MODELS[name].factory(N_IN, 4, key=key)
    else:
        made = eqx.filter_eval_shape(MODELS[name].factory, N_IN, 4, key=key)  # no arrays made
    assert _float_dtypes(made) == {jnp.dtype(jnp.float32)}


def test_the_readout_takes_the_precision_of_the_cell_under_it(x64, getkey):
    """A float64 cell (x64 on) gets a float64 readout, a float32 one a float32 readout: fit's
    data are float32, and a float32 readout under a float64 cell turned its state float64."""
    cell64 = make_gru(N_IN, HIDDEN, key=getkey())
    assert cell64.gru.weight_ih.dtype == jnp.float64
    net = complete_model(cell64, N_IN, 3, key=getkey())
    assert _float_dtypes(net.layers[1]) == {jnp.dtype(jnp.float64)}
    cell32 = sp.LIF(N_IN, HIDDEN, key=getkey())
    assert complete_model(cell32, N_IN, 3, key=getkey()).layers[1].weight.dtype == jnp.float32


@pytest.mark.slow
def test_a_float64_cell_trains_under_its_readout_where_x64_is_on(synth_folder, tmp_path):
    """fit of a float64 cell (Equinox's layers under x64) on float32 data: it failed deep in
    lax.scan, its float32 readout turning float64 at the first step."""
    from snnplast.train import TrainConfig, fit

    _, ds = synth_folder
    jax.config.update("jax_enable_x64", True)
    try:
        cell = make_gru(ds.n_channels, 6, key=jax.random.PRNGKey(0))
        summary = fit(TrainConfig(epochs=1, batch=16, method="diagonal"), ds, tmp_path,
                      progress=False, model=cell)
        trained = load_model(tmp_path, like=cell)
    finally:
        jax.config.update("jax_enable_x64", False)
    assert summary["complete"]
    assert trained.layers[1].weight.dtype == jnp.float64


def test_a_like_of_another_shape_is_one_line(tmp_path, getkey):
    from snnplast.train._checkpoint import save_model
    from snnplast.train._network import network

    cell = make_gru(N_IN, HIDDEN, key=getkey())
    save_model(tmp_path, *network(cell, 0, HIDDEN, N_IN, 3))
    with pytest.raises(sp.ValidationError, match="model.eqx does not fit the model it is read "
                       r"over: .*shape.*\(pass like= a model of the trained shape\)") as info:
        load_model(tmp_path, like=make_gru(N_IN, HIDDEN + 1, key=getkey()))
    assert "\n" not in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm", "layer_norm", "module_state", "named_tuple"])
def test_equinox_cells_train_reload_and_evaluate(name, synth_folder, tmp_path):
    """compare(model=cell) and load_model(like=cell); then the command line's --model
    file.py:factory, load_model of its run by the factory alone, and evaluate."""
    from snnplast._cli import main
    from snnplast.train import TrainConfig, compare, evaluate_model

    folder, ds = synth_folder
    make, _ = CELLS[name]
    cell = make(ds.n_channels, 6, key=jax.random.PRNGKey(0))
    report = compare("bptt,diagonal", TrainConfig(epochs=1, batch=16), ds, tmp_path / "py",
                     progress=False, model=cell)
    runs = {r["method"]: r for r in report["runs"]}
    assert [r["status"] for r in runs.values()] == ["complete", "complete"]
    trained = load_model(tmp_path / "py" / "diagonal", like=cell)
    assert type(trained.layers[0]) is type(cell)
    _, accuracy = evaluate_model(trained, ds.test)
    assert accuracy == pytest.approx(runs["diagonal"]["test_accuracy"], abs=1e-6)
    run = tmp_path / "cli"
    assert main(["train", "--data", str(folder), "--model", f"{__file__}:make_{name}",
                 "--hidden", "6", "--epochs", "1", "--batch", "16", "--bins", "12",
                 "--method", "diagonal", "--no-progress", "--out", str(run)]) == 0
    # rebuilt by the factory, from the file as the command line loaded it
    assert type(load_model(run).layers[0]).__qualname__ == type(cell).__qualname__
    assert main(["evaluate", str(run), "--data", str(folder / "shd_test.h5")]) == 0
    scored = json.loads((run / "evaluate-shd_test.h5" / "evaluation.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert scored["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-6)
