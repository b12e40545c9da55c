"""Extension points: a user's Jacobian rule, model and policy registered in one line each, a
user's cell trained from the command line by ``module:factory``, and the command line's errors."""

import json
import textwrap
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

import snnplast as sp
import snnplast.train
from snnplast._cli import build_parser, is_validation_error, main
from snnplast.engine import derive, diagonal, register_rule

# ----- a Jacobian rule for the user's own primitive ------------------------------------------------
# softsign(x) = x / (1 + |x|), as a primitive of its own: the engine has no rule for it.
softsign_p = Primitive("user_softsign")


def _softsign(x):
    return x / (1.0 + jnp.abs(x))


softsign_p.def_impl(_softsign)
mlir.register_lowering(softsign_p, mlir.lower_fun(_softsign, multiple_results=False))
batching.defvectorized(softsign_p)
softsign_p.def_abstract_eval(lambda x: x)
ad.defjvp(softsign_p, lambda g, x: g / (1.0 + jnp.abs(x)) ** 2)
RULE_CALLS = []


def softsign_rule(ctx):
    """The user's rule: elementwise, so one diagonal block, derivative 1 / (1 + |x|)^2."""
    RULE_CALLS.append(ctx.primitive.name)
    (x,) = ctx.invals
    return [[diagonal(jnp.shape(x), 1.0 / (1.0 + jnp.abs(x)) ** 2, const=False)]]


class SoftsignUnit(sp.Cell):
    """A leaky unit squashed by the user's primitive, fed back into itself."""

    w: jax.Array
    u: jax.Array

    def initial_state(self):
        return jnp.zeros(self.w.shape[0])

    def __call__(self, h, x):
        h = 0.8 * h + softsign_p.bind(self.u * h + self.w @ x)
        return h, h


def _unit(key, dtype):
    k1, k2 = jax.random.split(key)
    return SoftsignUnit(jax.random.normal(k1, (3, 4), dtype), jax.random.normal(k2, (3,), dtype))


def test_a_registered_rule_is_used_and_agrees_with_jacfwd(x64, getkey):
    cell = _unit(getkey(), jnp.float64)
    x0 = jnp.zeros(4, jnp.float64)
    with pytest.warns(UserWarning, match="no Jacobian rule for primitive 'user_softsign'"):
        fallback = derive(cell, x0)
    assert fallback.h_class(0, 0) == "dense"  # JAX's forward mode: correct, not compressed

    register_rule(softsign_p, softsign_rule)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback any more
        ts = derive(cell, x0)
    assert RULE_CALLS and ts.h_class(0, 0) == "diagonal"

    state = jax.random.normal(getkey(), (3,), jnp.float64)
    x = jax.random.normal(getkey(), (4,), jnp.float64)
    H, F = ts.materialize(cell, state, x)
    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def step(p, s):
        return eqx.combine(p, static)(s, x)[0]

    dp, ds = jax.jacfwd(step, argnums=(0, 1))(params, state)
    np.testing.assert_allclose(H[(0, 0)], ds, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F[(0, 0)], dp.w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F[(0, 1)], dp.u, rtol=1e-12, atol=1e-12)

    # and the online gradients built on it equal BPTT's
    xs = jax.random.normal(getkey(), (6, 4), jnp.float64)
    ys = jax.random.normal(getkey(), (6, 3), jnp.float64)

    def loss(o, y):
        return jnp.sum((o - y) ** 2)

    ref = sp.gradients(cell, xs, ys, loss=loss)
    got = sp.gradients(cell, xs, ys, loss=loss, method=sp.Exact())
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# ----- the model registry ------------------------------------------------------------------------
def test_a_registered_model_is_built_listed_and_validated(getkey):
    from snnplast.train import MODELS, build_model, register_model, resolve_model

    def small_rnn(n_in, hidden, *, key):
        return sp.RNN(n_in, hidden, key=key)

    register_model("small-rnn", small_rnn, "an RNN, registered by a test")
    try:
        assert resolve_model("small-rnn") is small_rnn
        net = build_model("small-rnn", 5, 6, 3, key=getkey())
        assert isinstance(net.layers[0], sp.RNN) and net.layers[1].weight.shape == (3, 6)
        help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
        assert "small-rnn" in help_text and "registered by a test" in help_text
    finally:
        del MODELS["small-rnn"]
    with pytest.raises(sp.ValidationError, match="'small-rnn'.*module:factory"):
        resolve_model("small-rnn")


@pytest.mark.parametrize("name", ["attention", pytest.param("columnar", marks=pytest.mark.slow)])
def test_attention_and_columnar_models_from_the_registry(name, getkey):
    net = snnplast.train.build_model(name, 6, 8, 3, key=getkey())
    _, out = sp.unroll(net, jnp.ones((5, 6)))
    assert out.shape == (5, 3) and bool(jnp.all(jnp.isfinite(out)))


def test_completion_rule(getkey):
    from snnplast.train import complete_model

    hidden = sp.LIF(5, 7, key=getkey())
    net = complete_model(hidden, 5, 3, key=getkey())
    assert net.layers[0] is hidden and net.layers[1].weight.shape == (3, 7)
    whole = sp.Sequential([hidden, sp.LI(7, 3, key=getkey())])
    assert complete_model(whole, 5, 3, key=getkey()) is whole
    # a stack of hidden layers is still a hidden layer
    stack = sp.Sequential([hidden, sp.RNN(7, 4, key=getkey())])
    assert complete_model(stack, 5, 3, key=getkey()).layers[1].weight.shape == (3, 4)
    with pytest.raises(sp.ValidationError, match="output shape \\(4,\\).*3 classes"):
        complete_model(sp.Sequential([hidden, sp.LI(7, 4, key=getkey())]), 5, 3, key=getkey())
    with pytest.raises(sp.ValidationError, match="does not take inputs of 6 channels"):
        complete_model(hidden, 6, 3, key=getkey())


# ----- a user's cell from the command line ---------------------------------------------------------
USER_MODULE = '''
    import jax, jax.numpy as jnp
    import snnplast

    class LeakyTanh(snnplast.Cell):
        w: jax.Array

        def initial_state(self):
            return jnp.zeros(self.w.shape[0])

        def __call__(self, h, x):
            h = 0.8 * h + 0.2 * jnp.tanh(self.w @ x)
            return h, h

    def make(n_in, hidden, *, key):
        return LeakyTanh(jax.random.normal(key, (hidden, n_in)) / n_in**0.5)
'''


def test_cli_trains_a_module_factory_and_load_model_rebuilds_it(tmp_path, monkeypatch, capsys):
    from snnplast import data
    from snnplast.train import evaluate_model, load_model, resolve_model

    (tmp_path / "usercells.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "shd"
    data.make_synth_shd(folder, n_per_class_train=3, n_per_class_test=1)
    out = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--data", str(folder), "--model", "usercells.py:make", "--hidden", "8",
            "--epochs", "1", "--batch", "16", "--bins", "20", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    spec = json.loads((out / "model.json").read_text())
    # a file named relative to the folder of the run is kept by its absolute path
    assert spec["model"] == f"{(tmp_path / 'usercells.py').resolve()}:make" and spec["hidden"] == 8
    summary = json.loads((out / "summary.json").read_text())
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    trained = load_model(out)  # from model.json alone, in another folder
    assert type(trained.layers[0]).__name__ == "LeakyTanh"
    test = data.load_dataset(folder, n_bins=20, progress=False).test
    _, accuracy = evaluate_model(trained, test)
    assert accuracy == pytest.approx(summary["test_accuracy"], abs=1e-6)
    # the same module by its import name, as `python -m` finds modules in the current folder
    monkeypatch.chdir(tmp_path)
    factory = resolve_model("usercells:make")
    assert factory(3, 2, key=jax.random.PRNGKey(0)).w.shape == (2, 3)


@pytest.mark.parametrize("model, named", [
    ("nosuchmodule_xyz:make", "no module named 'nosuchmodule_xyz'"),
    ("json:nosuchfactory", "has no attribute 'nosuchfactory'"),
    ("json:__doc__", "is not callable"),
    ("missing_file.py:make", "no file"),
])
def test_cli_bad_module_factory_is_one_line(model, named, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    assert main(["train", "--model", model, "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("snnplast train: error:") and "\n" not in err and named in err
    assert not (tmp_path / "never").exists() and not (tmp_path / "cache").exists()


# ----- errors: bad input is one line, a bug keeps its traceback --------------------------------
def test_unexpected_errors_keep_their_traceback(monkeypatch, capsys):
    import snnplast._cli._train as train_cli

    def broken(args):
        return jnp.reshape(jnp.zeros(3), (2,))  # raises inside JAX: a bug, not bad input

    monkeypatch.setattr(train_cli, "run", broken)
    assert main(["train"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "reshape" in err
    assert "unexpected TypeError (a bug, not bad input)" in err and "report it" in err


def test_validation_errors_are_told_apart(tmp_path):
    def caught(f):
        try:
            f()
        except Exception as e:  # noqa: BLE001 - the classification is what is tested
            return e
        raise AssertionError("no exception")

    assert is_validation_error(caught(lambda: snnplast.train.parse_method("warp")))
    # a data-module check written as a plain ValueError (a `raise` in snnplast's own code)
    from snnplast.data import load_dataset

    assert is_validation_error(caught(lambda: load_dataset("nope", cache_dir=tmp_path)))
    # the project's own error classes count wherever they are raised (a test's stand-in here)
    from snnplast.data import SpeechUnavailableError

    assert is_validation_error(caught(lambda: (_ for _ in ()).throw(SpeechUnavailableError("x"))))
    # the same built-in classes from inside JAX or NumPy are bugs
    assert not is_validation_error(caught(lambda: jnp.reshape(jnp.zeros(3), (2,))))
    assert not is_validation_error(caught(lambda: np.zeros(3).reshape(2)))
