"""The papers' experiments keep a log of finished runs, so an interrupted one resumes."""

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def ex(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    yield importlib.import_module("_experiments")
    for name in ("_experiments", "exp_scaling"):
        sys.modules.pop(name, None)


def test_log_reads_finished_runs_and_skips_a_cut_line(ex, tmp_path):
    path = tmp_path / ".x.jobs.jsonl"
    log = ex.JobLog(path, context={"n": 4})
    k1, k2 = log.key(seed=0, method="a"), log.key(seed=1, method="a")
    log.put(k1, {"post_shift_mse": 0.5, "curve": [1.0, float("nan")]})
    log.put(k2, {"post_shift_mse": 0.25, "curve": [2.0]})
    with open(path, "a") as f:
        f.write('{"key": "cut sh')  # a crash in the middle of a line
    again = ex.JobLog(path, context={"n": 4})
    assert set(again.done) == {k1, k2}
    assert again.get(k2) == {"post_shift_mse": 0.25, "curve": [2.0]}
    assert np.isnan(again.get(k1)["curve"][1])
    assert again.get(again.key(seed=2, method="a")) is None
    assert again.key(seed=0, method="a") == again.key(method="a", seed=0) == k1
    # the same seed and method under other options is another run
    other = ex.JobLog(path, context={"n": 8})
    assert other.get(other.key(seed=0, method="a")) is None
    assert ex.JobLog(path, restart=True).done == {} and not path.exists()


@pytest.mark.slow
def test_an_interrupted_experiment_resumes_with_the_same_results(ex, tmp_path, monkeypatch):
    exp = importlib.import_module("exp_scaling")
    argv = ["--ns", "4", "--steps", "30", "--seeds", "2"]
    whole = exp.main([*argv, "--out", str(tmp_path / "whole")])

    real_run, calls = ex.online_run, []

    def stopping_run(*a, **k):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(1)
        return real_run(*a, **k)

    out = tmp_path / "cut"
    monkeypatch.setattr(ex, "online_run", stopping_run)
    with pytest.raises(KeyboardInterrupt):
        exp.main([*argv, "--out", str(out)])
    (log,) = out.glob(".*.jobs.jsonl")
    assert len(log.read_text().splitlines()) == 4
    calls.clear()
    monkeypatch.setattr(ex, "online_run", lambda *a, **k: (calls.append(1), real_run(*a, **k))[1])
    resumed = exp.main([*argv, "--out", str(out)])
    assert len(calls) == 2  # 2 seeds x 3 methods, 4 of them read from the log
    assert not log.exists()
    for m, d in whole[4]["results"].items():
        np.testing.assert_allclose(resumed[4]["results"][m]["post_shift_mse"], d["post_shift_mse"],
                                   rtol=1e-6)
    data = json.loads(next(out.glob("*.json")).read_text())
    assert data["seeds"] == 2
