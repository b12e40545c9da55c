"""The README's examples run as written (the training one at a tiny size), its tables list what
the registries hold, and its commands are the CI's."""

import contextlib
import io
import math
import pathlib
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
from cell_zoo import BUILTIN, N_IN

import snnplast as sp
import snnplast.train

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def _block(marker):
    blocks = [b for b in _python_blocks() if marker in b]
    assert len(blocks) == 1, f"{len(blocks)} README blocks contain {marker!r}"
    return blocks[0]


def _run(code, namespace):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), namespace)
    return out.getvalue()


def _shrink(code, replacements):
    """`code` with each `old` replaced by `new`; each `old` must occur exactly once, so an edit
    of the README that this test no longer matches fails here instead of running big."""
    for old, new in replacements:
        assert code.count(old) == 1, f"{old!r} occurs {code.count(old)} times in the README block"
        code = code.replace(old, new)
    return code


def test_custom_neuron_example_runs():
    printed = _run(_block("class QuadraticIF"), {"__name__": "readme"})
    assert "TraceStructure(QuadraticIF" in printed and "factored" in printed
    assert float(printed.strip().splitlines()[-1]) < 1e-4


@pytest.mark.slow
def test_custom_neuron_trains_and_compares(tmp_path, monkeypatch):
    """The README's training of its own neuron, at a tiny size: 8 neurons, one epoch, the
    `synth` stand-in at 20 bins (made into a temporary cache)."""
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    namespace = {"__name__": "readme"}
    _run(_block("class QuadraticIF"), namespace)
    code = _shrink(_block("compare("), [
        ("load_dataset()", 'load_dataset("synth", n_bins=20, progress=False)'),
        ("(128, data.n_channels)", "(8, data.n_channels)"),
        ("TrainConfig(epochs=20)", "TrainConfig(epochs=1, batch=64)"),
        ('"runs/qif", model=cell', repr(str(tmp_path / "qif")) + ", model=cell, progress=False"),
        ('"runs/qif/diagonal"', repr(str(tmp_path / "qif" / "diagonal"))),
    ])
    printed = _run(code, namespace)
    report, data, cell = namespace["report"], namespace["data"], namespace["cell"]
    runs = {r["method"]: r for r in report["runs"]}
    assert list(runs) == ["bptt", "diagonal"] and len(printed.splitlines()) == 2
    assert -1.0 <= runs["diagonal"]["cosine"] <= 1.0
    assert report["config"]["model"] == "object:readme.QuadraticIF"
    # The trained network is the user's cell under the standard readout, and it reloads.
    trained = namespace["trained"]
    assert isinstance(trained, sp.Sequential) and isinstance(trained.layers[0], type(cell))
    assert isinstance(trained.layers[1], sp.LI) and trained.layers[1].weight.shape == (20, 8)
    loss, accuracy = sp.train.evaluate_model(trained, data.test)
    assert accuracy == pytest.approx(runs["diagonal"]["test_accuracy"], abs=1e-6)
    assert math.isfinite(loss)


@pytest.fixture
def readme_policy():
    namespace = {"__name__": "readme"}
    _run(_block("class TopK"), namespace)
    yield namespace["TopK"]
    sp.policies.METHODS.pop("top-k", None)


def _rel(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    num = sum(float(jnp.sum((x - y) ** 2)) for x, y in zip(la, lb, strict=True))
    return (num / sum(float(jnp.sum(y**2)) for y in lb)) ** 0.5


@pytest.mark.parametrize("name", [
    "rlif", pytest.param("rnn", marks=pytest.mark.slow),
    pytest.param("lstm", marks=pytest.mark.slow)])
def test_readme_policy_spans_diagonal_to_exact(name, readme_policy, x64, getkey):
    top_k = readme_policy
    cell = jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, BUILTIN[name](getkey()))
    xs = jax.random.normal(getkey(), (9, N_IN), jnp.float64) * 1.5
    ys = jax.random.normal(getkey(), sp.unroll(cell, xs)[1].shape, jnp.float64)

    def loss(out, y):
        return jnp.sum((out - y) ** 2)

    def grads(method):
        return sp.gradients(cell, xs, ys, loss=loss, method=method)

    n = 4  # the cells of cell_zoo have 4 units
    exact, diagonal = grads(sp.Exact()), grads(sp.Diagonal())
    assert _rel(grads(top_k(k=0)), diagonal) <= 1e-10
    assert _rel(grads(top_k(k=n)), exact) <= 1e-10
    # In between it is neither: the check above can tell the two apart on this cell.
    assert _rel(diagonal, exact) > 1e-6
    one = grads(top_k(k=1))
    assert _rel(one, exact) > 1e-10 and _rel(one, diagonal) > 1e-10


def test_readme_policy_is_a_method_once_registered(readme_policy):
    assert sp.train.parse_method("top-k:2", 0.5) == readme_policy(k=2, lam=0.5)
    assert "top-k:K" in sp.train.method_usages()


def test_readme_tables_list_the_registries():
    """The method table and the command-line table name exactly what the registries hold."""
    table = README[README.index("| method | `--method` |"):]
    table = table[: table.index("\n\n")]
    rows = "\n".join(table.splitlines()[2:])  # below the header and its rule
    listed = re.findall(r"^\| [^|]+ \| `([^`]+)` \|", rows, flags=re.MULTILINE)
    assert listed == list(sp.train.method_usages())
    usage = re.search(r"`snnplast train .*?\[--model ([^\]]+)\].*?\[--method ([^\]]+)\]", README)
    models, methods = (group.replace("\\|", "|").split("|") for group in usage.groups())
    assert models == [*sp.train.MODELS, "module:factory"]
    assert methods == list(sp.train.method_usages())


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[test]' && pytest" in README
    assert "pip install -q -e '.[test]'" in ci and "pytest" in ci
