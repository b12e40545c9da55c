"""Checkpoints and exact resume: a training process killed with SIGKILL (between steps, and in
the middle of writing a checkpoint) continues with ``snnplast train --resume`` to the very same
parameters, bit for bit, as a run never interrupted."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from snnplast import data
from snnplast._cli import main
from snnplast.train import load_model
from snnplast.train._checkpoint import CHECKPOINT_FILE, read_checkpoint_header

TIMING_KEYS = {"seconds", "train_seconds"}

# Kills its own process (SIGKILL, no clean-up of any kind) at a chosen instant of a training run
# started through the command line:
#   batch N: as the N-th training batch is drawn (between optimiser steps, mid-epoch);
#   write N: halfway through writing the N-th checkpoint file (a torn temporary file).
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from snnplast._atomic import atomic_write
    from snnplast._cli import main
    from snnplast.train import _checkpoint, _trainer

    mode, when, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    count = [0]

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if mode == "batch":
        draw = _trainer.training_batches

        def batches(*args, **kwargs):
            for item in draw(*args, **kwargs):
                count[0] += 1
                if count[0] == when:
                    die()
                yield item

        _trainer.training_batches = batches
    else:
        write = _checkpoint.atomic_write_bytes

        def torn(path, data):
            if path.name == "checkpoint.eqx":
                count[0] += 1
                if count[0] == when:
                    atomic_write(path, lambda tmp: (tmp.write_bytes(data[: len(data) // 2]), die()))
            return write(path, data)

        _checkpoint.atomic_write_bytes = torn
    sys.exit(main(argv))
    """
)


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    folder = root / "shd"
    data.make_synth_shd(folder, n_per_class_train=2, n_per_class_test=1, progress=False)
    env = {**os.environ, "SNNPLAST_CACHE": str(root / "cache")}
    argv = ["train", "--data", str(folder), "--model", "lif", "--hidden", "8", "--epochs", "3",
            "--batch", "2", "--bins", "12", "--lr", "5e-3", "--seed", "1", "--no-progress"]
    return root, env, argv


def _killed(env, mode, when, argv):
    killer = subprocess.run([sys.executable, "-c", KILLER, mode, str(when), *argv], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killer.returncode == -9, killer.stderr[-2000:]


def _records(run):
    with open(run / "metrics.jsonl") as f:
        return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS} for line in f]


def test_killed_run_resumes_bit_for_bit(setting, monkeypatch, capsys):
    root, env, argv = setting
    monkeypatch.setenv("SNNPLAST_CACHE", env["SNNPLAST_CACHE"])
    reference, run = root / "reference", root / "killed"
    assert main([*argv, "--out", str(reference)]) == 0
    steps = json.loads((reference / "summary.json").read_text())["steps_per_epoch"]
    assert steps >= 6

    # Killed between two steps of epoch 2, checkpointing every 2 steps.
    kill_at = steps + steps // 2 + 2
    _killed(env, "batch", kill_at, [*argv, "--out", str(run), "--checkpoint-every", "2"])
    header = read_checkpoint_header(run)
    state = header["state"]
    assert state["epoch"] == 2 and 0 < state["step"] < steps, state
    assert [r["epoch"] for r in _records(run)] == [1]
    # A fresh run may not silently replace the unfinished one.
    assert main([*argv, "--out", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err

    # Continued, and killed again halfway through writing its second checkpoint.
    _killed(env, "write", 2, ["train", "--resume", str(run), "--no-progress",
                              "--checkpoint-every", "2"])
    leftovers = [p.name for p in run.iterdir() if ".tmp" in p.name]
    assert leftovers, "the kill should have left a torn temporary file"
    later = read_checkpoint_header(run)["state"]
    assert (later["epoch"], later["step"]) > (state["epoch"], state["step"])

    # Continued to the end; the torn file is cleared away.
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name]
    for a, b in zip(jax.tree_util.tree_leaves(load_model(reference)),
                    jax.tree_util.tree_leaves(load_model(run)), strict=True):
        assert a.dtype == b.dtype and np.array_equal(np.asarray(a), np.asarray(b))
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    assert _records(run) == _records(reference)
    assert [r["epoch"] for r in _records(run)] == [1, 2, 3]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] and summary["resumes"] == 2
    assert summary["test_accuracy"] == json.loads((reference / "summary.json").read_text())[
        "test_accuracy"]

    # A finished run is reported as such, and left alone.
    before = (run / CHECKPOINT_FILE).read_bytes()
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    assert "already complete" in capsys.readouterr().out
    assert (run / CHECKPOINT_FILE).read_bytes() == before


@pytest.mark.parametrize(
    "make, named",
    [
        (lambda p: None, "no such folder"),
        (lambda p: p.mkdir(), f"no {CHECKPOINT_FILE}"),
        (lambda p: (p.mkdir(), (p / CHECKPOINT_FILE).write_bytes(b"junk")), "not a snnplast"),
    ],
)
def test_resume_refuses_a_folder_that_is_not_a_run(make, named, tmp_path, capsys):
    folder = tmp_path / "x"
    make(folder)
    assert main(["train", "--resume", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("snnplast train: error:") and "\n" not in err
    assert named in err and str(folder) in err


def test_resume_takes_no_other_settings(tmp_path, capsys):
    from snnplast.train._checkpoint import save_checkpoint
    from snnplast.train._config import TrainConfig
    from snnplast.train._resume import RunState

    state = RunState(epoch=1, step=0, epoch_rng=np.random.default_rng(0).bit_generator.state)
    tmp_path.mkdir(exist_ok=True)
    save_checkpoint(tmp_path, [np.zeros(2)], state.to_header(TrainConfig().to_dict(), {}, {}))
    assert main(["train", "--resume", str(tmp_path), "--hidden", "4"]) == 2
    err = capsys.readouterr().err
    assert "--hidden cannot be combined with --resume" in err
