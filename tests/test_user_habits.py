"""How people call snnplast before they have read everything: paths with ``~``, an ``--out``
that is a file, NumPy numbers in a config, a data set's name where a data set is wanted, a
typo in a name. Each case ends in the right result or in one line that names the value and
what to do, before any work and with nothing written."""

import json
from pathlib import Path

import numpy as np
import pytest

from snnplast._cli import _bench, main
from snnplast._errors import ValidationError, ValidationTypeError
from snnplast.data import SpikeDataset, Split, load_dataset
from snnplast.train import (
    CheckpointError,
    TrainConfig,
    check_model,
    compare,
    evaluate,
    fit,
    load_model,
    parse_method,
    run_status,
)

C, T = 140, 6


def _dataset(n_bins=T) -> SpikeDataset:
    rng = np.random.default_rng(0)

    def split(n):
        x = rng.poisson(0.2, (n, n_bins, C)).astype(np.uint8)
        y = (np.arange(n) % 2).astype(np.int32)
        return Split(x=x, y=y, speakers=np.zeros(n, np.int32))

    return SpikeDataset(split(8), split(4), split(4), 2, C, n_bins, ("a", "b"), "fake")


TINY = TrainConfig(model="lif", hidden=4, epochs=1, batch=4, n_bins=T, eval_batch=4)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home folder of the test's own, so that ``~`` is somewhere to look."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- names with a typo ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "typo", "meant"),
    [
        (check_model, "rlf", "rlif"),
        (check_model, "ALIF", "alif"),
        (parse_method, "diagonl", "diagonal"),
        (parse_method, "randomk:4", "random-k"),
        (lambda name: load_dataset(name, progress=False), "synht", "synth"),
    ],
)
def test_a_typo_is_answered_with_the_close_name(check, typo, meant):
    with pytest.raises(ValidationError, match=rf"did you mean '{meant}'\?$"):
        check(typo)


def test_a_name_far_from_every_other_gets_no_guess():
    with pytest.raises(ValidationError) as e:
        check_model("transformer")
    assert "did you mean" not in str(e.value) and "allowed: lif" in str(e.value)


def test_the_command_line_suggests_too(capsys, home):
    assert main(["train", "--method", "diagonl", "--out", "run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("did you mean 'diagonal'?") and len(err.splitlines()) == 1
    assert not (home / "run").exists()


# --- TrainConfig takes what a sweep hands it ---------------------------------------------------


def test_config_takes_numpy_numbers_and_a_path_as_the_python_values():
    config = TrainConfig(
        hidden=np.int64(8), epochs=np.int32(2), seed=np.int64(3), lr=np.float32(0.5),
        lam=np.float64(1.0), spike_drop=np.float32(0.25), data=Path("some/folder"),
    )  # fmt: skip
    assert (config.hidden, config.epochs, config.seed) == (8, 2, 3)
    assert type(config.hidden) is int and type(config.lr) is float and type(config.data) is str
    assert config.lr == 0.5 and config.spike_drop == 0.25 and config.data == "some/folder"
    # What the run's JSON files record: it must serialise.
    assert json.loads(json.dumps(config.to_dict()))["hidden"] == 8


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"data": 3}, "data must be a data set's name or a folder"),
        ({"hidden": np.float64(8.5)}, "hidden must be an integer >= 1, got 8.5"),
        ({"lr": "0.01"}, "lr must be a finite number > 0, got '0.01'"),
        ({"epochs": np.int64(0)}, "epochs must be an integer >= 1, got 0"),
    ],
)
def test_config_still_refuses_wrong_values(values, message):
    with pytest.raises(ValidationError, match=message):
        TrainConfig(**values)


# --- fit and compare given the wrong kind of data set ----------------------------------------


@pytest.mark.parametrize(
    "data",
    ["synth", Path("/data/shd"), (np.zeros((4, T, C)), np.zeros(4, np.int32)), {"train": None}],
    ids=["name", "path", "arrays", "dict"],
)
def test_fit_says_what_to_pass_instead_of_a_name_or_arrays(data, home):
    for train in (fit, lambda c, d, o: compare("bptt", c, d, o, progress=False)):
        with pytest.raises(ValidationTypeError, match=r"SpikeDataset.*load_dataset\(it"):
            train(TINY, data, home / "run")
    assert not (home / "run").exists()


# --- output folders -------------------------------------------------------------------------


def test_an_out_that_is_a_file_is_refused_before_any_work(home, capsys):
    (home / "notes.txt").write_text("mine")
    with pytest.raises(ValidationError, match="notes.txt exists and is not a folder"):
        fit(TINY, _dataset(), home / "notes.txt", progress=False)
    with pytest.raises(ValidationError, match="notes.txt exists and is not a folder"):
        compare("bptt", TINY, _dataset(), home / "notes.txt", progress=False)
    # Checked before the run folder and the data are looked at: no conversion to wait for.
    with pytest.raises(ValidationError, match="notes.txt exists and is not a folder"):
        evaluate(home / "no-run", "synth", out=home / "notes.txt", progress=False)
    assert main(["compare", "--methods", "bptt", "--data", "synth", "--out", "notes.txt"]) == 2
    assert "--out notes.txt exists and is not a folder" in capsys.readouterr().err
    assert (home / "notes.txt").read_text() == "mine"


def test_resume_of_a_file_says_it_is_a_file(home):
    (home / "run.txt").write_text("")
    with pytest.raises(
        CheckpointError, match="run.txt is not a training run: a file, not a folder"
    ):
        run_status(home / "run.txt")
    with pytest.raises(CheckpointError, match="no such folder"):
        run_status(home / "missing")


def test_tilde_means_the_home_folder(home):
    # A path with ~ from a config file or a Python string, where no shell expands it.
    with pytest.raises(CheckpointError, match=f"{home}/missing is not a training run"):
        run_status("~/missing")
    with pytest.raises(FileNotFoundError, match=f"{home}/missing/model.eqx not found"):
        load_model("~/missing")
    (home / "file").write_text("")
    with pytest.raises(ValidationError, match=f"{home}/file exists"):
        fit(TINY, _dataset(), "~/file", progress=False)
    assert not (home / "~").exists()


@pytest.mark.slow
def test_fit_and_the_command_line_write_under_the_home_folder(home):
    summary = fit(TINY, _dataset(), "~/runs/a", progress=False)
    assert (home / "runs" / "a" / "model.eqx").is_file() and summary["complete"]
    assert not (home / "~").exists()
    assert main(["train", "--resume", "~/runs/a"]) == 0  # already complete, found
    assert main(["plot", "~/runs/a", "--out", "~/curves.png"]) == 0
    assert (home / "curves.png").is_file() and not (home / "~").exists()


# --- the record of a run names the data it trained on ---------------------------------------


@pytest.mark.slow
def test_a_run_records_its_data_binning_and_evaluate_uses_it(home):
    """TrainConfig's n_bins is only recorded; left at its default while the data has 10 bins,
    the record said 100, and ``evaluate`` binned other data into 100."""
    data = load_dataset("synth", n_bins=10, progress=False)
    config = TrainConfig(model="lif", hidden=8, epochs=1, batch=64, data="synth")
    assert config.n_bins != 10
    summary = fit(config, data, home / "run", progress=False)
    assert summary["config"]["n_bins"] == 10
    result = evaluate(home / "run", "synth", progress=False)
    # The same model on the same test split, binned the same: the same accuracy.
    assert result["n"] == summary["dataset"]["n_test"]
    assert result["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-9)


def test_evaluate_bins_as_the_data_was_for_runs_recorded_before(tmp_path):
    from snnplast.train._evaluate import _run_binning

    summary = {"config": {"n_bins": 100}, "dataset": {"n_bins": 10}, "model": {"n_in": 140}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert _run_binning(tmp_path) == (10, 5, "absolute")


# --- snnplast bench: an option given is an option used -----------------------------------------


def test_bench_options_without_a_model_measure_that_problem(monkeypatch, capsys):
    calls = []

    def measure(**kw):
        calls.append(kw)
        return {**kw, "mode": "step", "ms_per_step": 1.0, "compile_seconds": 0.0,
                "temp_bytes": 0, "cosine_vs_bptt": 1.0}  # fmt: skip

    monkeypatch.setattr(_bench, "measure", measure)
    assert main(["bench", "--method", "immediate", "--hidden", "4", "--repeats", "1"]) == 0
    # Before, without --model, these were ignored and the 2-minute default table ran.
    assert len(calls) == 1
    assert calls[0]["method"] == "immediate" and calls[0]["hidden"] == 4
    assert calls[0]["model"] == "ralif" and calls[0]["steps"] == 100
    assert main(["bench", "--method", "diagonl", "--hidden", "4"]) == 2
    assert "did you mean 'diagonal'?" in capsys.readouterr().err
    assert len(calls) == 1


def test_bench_help_states_the_defaults_it_uses():
    text = " ".join(_bench_help().split())
    for name, value in _bench._ONE.items():
        if value is not None:
            assert f"(default {value})" in text, name


def _bench_help() -> str:
    from snnplast._cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["bench"].format_help()


# --- a data folder with one of the two SHD files; the version ---------------------------------


@pytest.mark.parametrize("present", ["shd_train.h5", "shd_test.h5"])
def test_a_folder_with_one_shd_file_names_the_other(present, tmp_path, capsys):
    from snnplast.data import write_shd_h5

    write_shd_h5(tmp_path / present, [np.array([0.1])], [np.array([3])], [0], [0], ["zero"])
    absent = ({"shd_train.h5", "shd_test.h5"} - {present}).pop()
    with pytest.raises(FileNotFoundError, match=rf"{present} is there, but: .*{absent}"):
        load_dataset(tmp_path, progress=False, cache_dir=tmp_path / "cache")
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert f"{present} is there, but" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_version(capsys):
    import snnplast

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"snnplast {snnplast.__version__}"


# --- Ctrl-C ---------------------------------------------------------------------------------


@pytest.mark.parametrize("checkpointed", [True, False])
def test_ctrl_c_in_training_says_how_to_continue(checkpointed, home, monkeypatch, capsys):
    import snnplast.data
    import snnplast.train

    def interrupted_fit(config, dataset, out, **kw):
        if checkpointed:
            out.mkdir()
            (out / "checkpoint.eqx").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(snnplast.data, "load_dataset", lambda *a, **kw: _dataset())
    monkeypatch.setattr(snnplast.train, "fit", interrupted_fit)
    assert main(["train", "--data", "synth", "--out", "my run", "--no-progress"]) == 130
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    if checkpointed:
        assert err.endswith("continue it with: snnplast train --resume 'my run'")
    else:
        assert err.endswith("interrupted before its first checkpoint")


@pytest.mark.slow
def test_a_batch_above_the_training_split_is_said(home, monkeypatch, capsys):
    import snnplast.data

    monkeypatch.setattr(snnplast.data, "load_dataset", lambda *a, **kw: _dataset())
    argv = ["train", "--data", "synth", "--model", "lif", "--hidden", "4", "--epochs", "1",
            "--bins", str(T), "--batch", "100", "--out", "run", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert "--batch 100 is more than the 8 training samples: each step took all 8" in (
        capsys.readouterr().out
    )
    assert json.loads((home / "run" / "summary.json").read_text())["batch_used"] == 8


# --- snnplast.gradients called as the command line is -----------------------------------------


def _lif_problem():
    import jax
    import jax.numpy as jnp

    import snnplast

    cell = snnplast.LIF(3, 4, key=jax.random.PRNGKey(0))
    xs = jnp.ones((5, 3))
    ys = jnp.zeros((5, 4))
    return cell, xs, ys, lambda z, y: jnp.sum((z - y) ** 2)


def test_gradients_of_a_batch_names_the_shapes_and_vmap():
    import snnplast

    cell, xs, ys, loss = _lif_problem()
    with pytest.raises(ValueError, match=r"inputs \(2, 5, 3\) look like a batch.*jax.vmap"):
        snnplast.gradients(cell, np.stack([xs, xs]), np.stack([ys, ys]), loss=loss)
    # Inputs of the wrong width are no batch: one line naming the step's input shape, with the
    # cell's own error after it (a TypeError, as JAX's).
    with pytest.raises(TypeError, match=r"one step of LIF fails on inputs\[0\] of shape \(7,\) "
                       r"\(inputs \(5, 7\), one step's input per row\): .*dot_general") as e:  # fmt: skip
        snnplast.gradients(cell, np.ones((5, 7), np.float32), ys, loss=loss)
    assert "\n" not in str(e.value)


def test_gradients_of_a_cell_with_python_control_flow_keeps_jax_s_own_error():
    import jax
    import jax.numpy as jnp

    import snnplast

    class Branchy(snnplast.Cell):
        w: jax.Array

        def initial_state(self):
            return jnp.zeros(2)

        def __call__(self, v, x):
            v = 0.9 * v + self.w @ x
            if v[0] > 1.0:  # a traced value in an if: fails whatever the input's shape
                v = v - 1.0
            return v, v

    cell = Branchy(jnp.ones((2, 3)))
    # Not "does not take inputs of shape ...": the input is right, the if is what to change.
    with pytest.raises(jax.errors.TracerBoolConversionError):
        snnplast.gradients(cell, jnp.ones((4, 3)), jnp.zeros((4, 2)),
                           loss=lambda o, y: jnp.sum((o - y) ** 2))


def _per_step_loss_calls():
    """Each entry point that takes a per-step loss, called on a sequence (or a batch of one)."""
    import snnplast as sp

    return {
        "gradients": lambda cell, xs, ys, loss: sp.gradients(cell, xs, ys, loss=loss),
        "gradients Diagonal": lambda cell, xs, ys, loss: sp.gradients(
            cell, xs, ys, loss=loss, method=sp.Diagonal()),
        "gradients TruncatedBPTT": lambda cell, xs, ys, loss: sp.gradients(
            cell, xs, ys, loss=loss, method=sp.TruncatedBPTT(2)),
        "sequence_loss": lambda cell, xs, ys, loss: sp.sequence_loss(cell, xs, ys, loss),
        "TruncatedBPTT.loss_and_grad": lambda cell, xs, ys, loss: sp.TruncatedBPTT(
            2).loss_and_grad(cell, xs[None], ys[None], loss),
        "online_loss_and_grad": lambda cell, xs, ys, loss: sp.online.online_loss_and_grad(
            cell, xs[None], ys[None], sp.Diagonal(), loss),
        "OnlineLearner.update": lambda cell, xs, ys, loss: _learner_update(cell, xs, ys, loss),
    }  # fmt: skip


def _learner_update(cell, xs, ys, loss):
    import snnplast as sp

    learner = sp.online.OnlineLearner(sp.Diagonal(), loss, every=2)
    return learner.update(cell, learner.init(cell, xs[0]), xs, ys)


@pytest.mark.parametrize("call", list(_per_step_loss_calls()))
def test_a_loss_per_element_is_one_line_naming_its_shape(call):
    # (z - y) ** 2 without a sum would be summed over the elements: a scale never chosen.
    import jax.numpy as jnp

    run = _per_step_loss_calls()[call]
    cell, xs, ys, _ = _lif_problem()
    with pytest.raises(ValidationError, match=(
        r"loss\(output, target\) returned an array of shape \(4,\) for one step \(output \(4,\), "
        r"target \(4,\)\); it must return a scalar per step: reduce it")) as e:  # fmt: skip
        run(cell, xs, ys, lambda z, y: (z - y) ** 2)
    assert "\n" not in str(e.value)
    # A loss of shape (1,) is no scalar either.
    with pytest.raises(ValidationError, match=r"shape \(1,\)"):
        run(cell, xs, ys, lambda z, y: jnp.sum((z - y) ** 2, keepdims=True))


def test_gradients_with_the_command_line_name_points_to_the_object():
    import snnplast
    from snnplast.policies import policy_from_text

    cell, xs, ys, loss = _lif_problem()
    with pytest.raises(ValueError, match=r"'random-k:2' is the command line's name for "
                       r"snnplast.RandomK; snnplast.policies.policy_from_text"):  # fmt: skip
        snnplast.gradients(cell, xs, ys, loss=loss, method="random-k:2")
    # What the message says to do builds that object.
    assert policy_from_text("random-k:2") == snnplast.RandomK(2)


# --- a whole data set where a split or a name goes --------------------------------------------


def test_a_data_set_where_a_name_goes_is_one_short_line():
    data = _dataset()
    with pytest.raises(ValidationError) as e:
        load_dataset(data, progress=False)
    message = str(e.value)
    assert message.startswith("load_dataset: got a SpikeDataset; allowed: 'synth'")
    assert "\n" not in message and "array(" not in message


def test_an_empty_data_name_or_path_is_not_the_working_folder(home, capsys):
    # An unset shell variable (--data "$DATA") used to read the working folder: here a folder
    # of recordings, trained on or scored without a word.
    from wav_files import write_tone

    from snnplast import data
    from snnplast._cli import build_parser

    write_tone(home / "takes" / "3_speaker_1.wav")
    for call in (lambda: load_dataset("", progress=False),
                 lambda: data.load_test_split(" ", progress=False),
                 lambda: data.check_data_source("")):  # fmt: skip
        with pytest.raises(ValidationError, match="got an empty name .*the working folder is '.'"):
            call()
    assert not data.is_recordings_folder("")
    with pytest.raises(ValidationError, match="in_dir '': name a folder of recordings"):
        data.convert_audio("", home / "x.h5")
    with pytest.raises(ValidationError, match="out '': empty; name a folder"):
        evaluate(home, "synth", out="")
    with pytest.raises(ValidationError, match=r"data must be a data set's name or a folder .*''"):
        TrainConfig(data="")
    assert main(["train", "--data", "", "--epochs", "1"]) == 2
    assert "got ''" in capsys.readouterr().err and not (home / "runs").exists()
    for argv in (["evaluate", "", "--data", "synth"], ["train", "--out", ""],
                 ["data", "convert-audio", "", "--out", "x.h5"]):  # fmt: skip
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
        assert "empty path '' ('.' for the working folder)" in capsys.readouterr().err


def test_a_set_s_name_beside_a_folder_of_that_name_says_how_to_pass_it(home, monkeypatch):
    from snnplast import data

    monkeypatch.setenv("SNNPLAST_DATA", str(home / "nothing"))
    data.make_synth_shd(home / "shd", n_per_class_train=1, n_per_class_test=1)
    with pytest.raises(data.SHDMissingError, match="the folder shd/ here is not what the name "
                       "means: pass ./shd to read it$"):  # fmt: skip
        data.load_test_split("shd", progress=False)
    assert len(data.load_test_split("./shd", n_bins=4, progress=False)[0].y) == 20


def test_evaluate_model_of_a_data_set_names_its_split():
    from snnplast.train import evaluate_model

    with pytest.raises(ValidationTypeError, match="got SpikeDataset; pass one of its splits, e.g. "
                       "dataset.test"):  # fmt: skip
        evaluate_model(None, _dataset())
    with pytest.raises(ValidationTypeError, match=r"must be a snnplast.data.Split .*got tuple$"):
        evaluate_model(None, (np.zeros((2, T, C)), np.zeros(2)))


@pytest.mark.parametrize("batch", [0, -3, 2.5, "8"])
def test_an_evaluation_batch_that_is_no_count_is_one_line(batch, home):
    # It was clamped to 1 (0, -3) or failed inside min() (a string).
    from snnplast.train import evaluate_model

    message = rf"batch must be an integer >= 1, got {batch!r}"
    with pytest.raises(ValidationError, match=message):
        evaluate_model(None, _dataset().test, batch=batch)
    with pytest.raises(ValidationError, match=message):
        evaluate(home, "synth", batch=batch)


def test_a_data_folder_is_recorded_whole_so_resume_finds_it_from_anywhere(home):
    from snnplast._cli import build_parser
    from snnplast._cli._train import config_from_args

    (home / "my data").mkdir()
    args = build_parser().parse_args(["train", "--data", "my data"])
    assert config_from_args(args, "bptt").data == str(home / "my data")
    for name in ("synth", "nowhere"):  # a name, and what is no folder, stay as given
        args = build_parser().parse_args(["train", "--data", name])
        assert config_from_args(args, "bptt").data == name


def test_every_path_option_takes_tilde(home):
    from snnplast._cli import build_parser
    from snnplast.data._shd.show import check_image_path

    parse = build_parser().parse_args
    args = parse(["evaluate", "~/run", "--data", "synth", "--out", "~/o", "--labels", "~/l.csv"])
    assert (args.run_dir, args.out, args.labels) == (home / "run", home / "o", home / "l.csv")
    args = parse(["data", "show", "~/f.h5", "--out", "~/f.png"])
    assert (args.file, args.out) == (home / "f.h5", home / "f.png")
    args = parse(["data", "convert-audio", "~/wav", "--out", "~/x.h5"])
    assert (args.in_dir, args.out) == (home / "wav", home / "x.h5")
    assert parse(["data", "synth-shd", "--out", "~/d"]).out == home / "d"
    assert parse(["plot", "~/run", "--out", "~/p.png"]).paths == [home / "run"]
    # The same where Python is given the text.
    assert check_image_path("~/f.png") == home / "f.png"


# --- inspect's flags; output piped into head ---------------------------------------------------


def test_inspect_with_both_model_and_cell_says_pick_one(capsys):
    assert main(["inspect", "--model", "lif", "--cell", "mine.py:make"]) == 2
    err = capsys.readouterr().err
    assert "give --model lif (a hidden layer under the readout) or --cell mine.py:make" in err


def test_a_reader_that_leaves_early_is_no_bug(monkeypatch, capsys):
    """`snnplast inspect | head -3`: the pipe closes under the printing command."""
    from snnplast._cli import _plot

    def printing(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(_plot, "run", printing)
    assert main(["plot", "run", "--out", "p.png"]) == 141
    assert capsys.readouterr().err == ""


def test_a_data_file_where_its_folder_goes_names_the_folder(tmp_path):
    # One file alone is a data set of its own (tests/test_user_data.py); one of a set lying
    # complete beside it is refused for training, naming the folder that is the data set.
    from snnplast.data import make_synth_shd

    make_synth_shd(tmp_path, n_per_class_train=1, n_per_class_test=1, progress=False)
    expected = rf"SHD set beside it; .*pass the folder, --data {tmp_path}$"
    with pytest.raises(ValidationError, match=expected):
        load_dataset(tmp_path / "shd_train.h5", cache_dir=tmp_path / "cache", progress=False)
    (tmp_path / "shd_train.h5").write_bytes(b"")
    with pytest.raises(ValueError, match="shd_train.h5: not an HDF5 file"):
        load_dataset(tmp_path / "shd_train.h5", cache_dir=tmp_path / "cache", progress=False)


def test_a_folder_the_machine_refuses_is_one_line_and_no_bug(monkeypatch, capsys, tmp_path):
    """An --out where nothing may be written (permission, a read-only file system) or a full
    disk: the machine's answer and what to do, in one line, not a bug report."""
    import errno
    import os

    from snnplast._cli import _plot

    refused = Path("/sys/snnplast_cannot_write_here")
    try:
        os.mkdir(refused)  # even root may not create folders in sysfs
    except OSError as e:
        real = e
    else:  # pragma: no cover - a machine without sysfs
        os.rmdir(refused)
        real = PermissionError(errno.EACCES, "Permission denied", str(refused))
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "metrics.jsonl"))
    for error, hint in ((real, "choose a folder you can write to"), (full, "--resume")):
        def writing(args, error=error):
            raise error

        monkeypatch.setattr(_plot, "run", writing)
        assert main(["plot", "run", "--out", "p.png"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "a bug" not in err, err
        assert f"error: {error.strerror}: {error.filename}; " in err and hint in err, err
    # Any other OSError of the code is still a bug with its traceback.
    monkeypatch.setattr(_plot, "run", lambda args: os.close(-1))
    assert main(["plot", "run", "--out", "p.png"]) == 1
    assert "a bug" in capsys.readouterr().err
