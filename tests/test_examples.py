"""The scripts in ``examples/``, each run at a tiny size through its own command-line options.

Each script's ``main(argv)`` is called in this process (the module loaded from its file) and
what it returns is checked. Only the streaming example is fast enough for the default run;
the others are ``slow`` (``pytest -m slow tests/test_examples.py``). Data: the procedural
stand-in (``--data synth``) in a cache of the test session's own, and WAV files made here.
"""

import ast
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from wav_files import write_tone

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    # Registered first: dataclasses (an Equinox cell) look their module up while being made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def own_cache(tmp_path_factory, monkeypatch):
    """One cache folder for the session's examples, so the stand-in data set is made once."""
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path_factory.getbasetemp() / "example-cache"))


def test_every_example_is_tested_and_says_what_it_shows_and_how_long():
    tested = {"custom_neuron", "shd_online_vs_bptt", "streaming", "own_recordings"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested
    for name in tested:
        doc = ast.get_docstring(ast.parse((EXAMPLES / f"{name}.py").read_text()))
        assert "2 CPU cores" in doc and "python examples/" in doc, name


def test_streaming(tmp_path):
    out = tmp_path / "stream.png"
    result = load("streaming").main(
        ["--chunks", "4", "--chunk", "200", "--regime", "400", "--every", "2", "--hidden", "16",
         "--lr", "1e-2", "--out", str(out)]
    )  # fmt: skip
    losses = result["losses"]
    assert result["updates"] == 4 * 200 // 2 and losses.shape == (800,)
    assert np.all(np.isfinite(losses))
    chunk = losses.reshape(4, 200).mean(axis=1)
    # It learns the first regime, the sign flip at step 400 undoes that, and it learns again.
    assert chunk[1] < 0.5 * chunk[0], chunk
    assert chunk[2] > 2 * chunk[1], chunk
    assert chunk[3] < 0.5 * chunk[2], chunk
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_custom_neuron(own_cache, tmp_path):
    args = ["--data", "synth", "--epochs", "1", "--hidden", "16", "--limit", "64", "--batch", "16"]
    result = load("custom_neuron").main([*args, "--out", str(tmp_path)])
    exact, diagonal = result["cosines"]["exact"], result["cosines"]["diagonal"]
    # RTRL is BPTT's gradient (float32 rounding); e-prop drops the recurrent paths.
    assert min(exact.values()) > 1 - 1e-5, exact
    assert diagonal["w_rec"] < 1 - 1e-4, diagonal
    # fit trained the user's network as it was given (no second readout) on the 64 samples.
    summary = result["summary"]
    assert summary["config"]["method"] == "diagonal" and summary["dataset"]["n_train"] == 64
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1]
    assert metrics[0]["test_accuracy"] == result["test_accuracy"] == summary["test_accuracy"]
    spec = json.loads((tmp_path / "model.json").read_text())
    assert spec["readout_added"] is False, spec


@pytest.mark.slow
def test_shd_online_vs_bptt(own_cache, tmp_path):
    out = tmp_path / "cmp"
    report = load("shd_online_vs_bptt").main(
        ["--data", "synth", "--methods", "bptt,diagonal", "--model", "lif", "--hidden", "16",
         "--epochs", "1", "--out", str(out)]
    )  # fmt: skip
    assert [r["method"] for r in report["runs"]] == ["bptt", "diagonal"]
    assert all(r["status"] == "complete" for r in report["runs"])
    for name in ("compare.md", "compare.json", "compare.png", "curves.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "compare.json").read_text())["methods"] == ["bptt", "diagonal"]


@pytest.mark.slow
def test_own_recordings(tmp_path, capsys):
    """A Free Spoken Digit-style folder: 3 'digits' (tones) by 5 named speakers."""
    src = tmp_path / "wav"
    src.mkdir()
    for s, speaker in enumerate(["ana", "ben", "carla", "dev", "eli"]):
        for label, f0 in enumerate((120.0, 200.0, 320.0)):
            write_tone(src / f"{label}_{speaker}_0.wav", 0.12, f0 * (1 + 0.03 * s), 10 * s + label)
    summary = load("own_recordings").main(
        [str(src), "--out", str(tmp_path / "out"), "--epochs", "2", "--hidden", "16",
         "--batch", "4"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "test speakers (never trained on): " in printed
    assert summary["complete"] and summary["dataset"]["n_test"] == 3  # one speaker of five
    assert summary["dataset"]["n_train"] + summary["dataset"]["n_val"] == 12
