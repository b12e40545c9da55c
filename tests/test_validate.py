"""Bad input is refused before any work: one line naming the value and what is allowed, exit
code 2, no output folder; command-line values before any data is made or read, data errors as
the files are read."""

import h5py
import numpy as np
import pytest

import snnplast.data
from snnplast import data
from snnplast._cli import main
from snnplast.train import TrainConfig


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    """Loading or making any data set fails the test: the checks must come first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("data was loaded before the arguments were checked")

    monkeypatch.setattr(snnplast.data, "load_dataset", forbidden)
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SNNPLAST_DATA", str(tmp_path / "data"))


@pytest.mark.parametrize(
    "args, named, allowed",
    [
        (["--epochs", "0"], "epochs must be", ">= 1"),
        (["--epochs", "-3"], "-3", ">= 1"),
        (["--hidden", "0"], "hidden", ">= 1"),
        (["--batch", "-1"], "batch", ">= 1"),
        (["--bins", "0"], "n_bins", ">= 1"),
        (["--model", "foo"], "'foo'", "allowed"),
        (["--method", "magic"], "'magic'", "allowed"),
        (["--data", "nowhere-at-all"], "'nowhere-at-all'", "allowed"),
        (["--method", "random-k:100000", "--hidden", "16"], "k=100000", "0..16"),
        (["--method", "head-sparse:0"], "fraction=0.0", "(0, 1]"),
        (["--method", "head-sparse:1.5"], "1.5", "[0, 1]"),
        (["--method", "diagonal", "--lam", "1.5"], "1.5", "[0, 1]"),
        (["--method", "diagonal", "--lam", "-0.1"], "-0.1", "[0, 1]"),
        (["--lr", "-1"], "-1", "> 0"),
        (["--on-nan", "ignore"], "'ignore'", "stop, skip"),
        (["--devices", "0"], "devices", ">= 1"),
        (["--devices", "64"], "devices=64", "allowed 1.."),
        (["--checkpoint-every", "0"], "--checkpoint-every", ">= 1"),
        (["--resume", "no-such-run"], "no-such-run", "not a training run"),
    ],
)
def test_bad_values_refused_before_any_data(args, named, allowed, no_data, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["train", *args, "--no-progress"] + ([] if "--resume" in args else
                                                    ["--out", str(out)])) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("snnplast train: error:") and "\n" not in err, err
    assert named in err and allowed in err, err
    assert not out.exists()


def test_random_k_fits_hidden_in_python_too():
    with pytest.raises(ValueError, match="k=17 is larger than the hidden size 16"):
        TrainConfig(method="random-k:17", hidden=16)
    assert TrainConfig(method="random-k:16", hidden=16).method == "random-k:16"


def _pair(folder, n_channels=700):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("shd_train.h5", 8), ("shd_test.h5", 4)):
        times = [np.sort(rng.uniform(0, 1, 5)) for _ in range(n)]
        units = [rng.integers(0, n_channels, 5) for _ in range(n)]
        data.write_shd_h5(folder / name, times, units, np.arange(n) % 2, np.arange(n) % 4,
                          ["a", "b"], n_channels=n_channels)


def _set_spike(path, name, sample, position, value):
    """Overwrite one spike's time or unit in place (h5py rewrites the variable-length row)."""
    with h5py.File(path, "r+") as f:
        row = f[name][sample]
        row[position] = value
        f[name][sample] = row


def _set_label(path, value):
    with h5py.File(path, "r+") as f:
        f["labels"][3] = value


@pytest.mark.parametrize(
    "damage, file, named",
    [
        (lambda p: _set_spike(p, "spikes/units", 1, 0, 700), "shd_train.h5", "spike unit 700"),
        (lambda p: _set_spike(p, "spikes/times", 2, -1, np.nan), "shd_test.h5", "spike time nan"),
        (lambda p: _set_spike(p, "spikes/times", 2, -1, -0.5), "shd_train.h5", "spike time -0.5"),
        (lambda p: _set_label(p, 2), "shd_train.h5", "labels reach 2"),
    ],
)
def test_bad_spike_data_named_by_file(damage, file, named, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "shd"
    _pair(folder)
    damage(folder / file)
    out = tmp_path / "never"
    argv = ["train", "--data", str(folder), "--model", "lif", "--hidden", "4", "--epochs", "1",
            "--batch", "2", "--bins", "5", "--no-progress", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and named in err and str(folder / file) in err, err
    assert not out.exists()


def test_train_and_test_with_different_channel_counts(tmp_path, monkeypatch, capsys, no_data):
    folder = tmp_path / "shd"
    _pair(folder, n_channels=700)
    _pair(tmp_path / "other", n_channels=350)
    (tmp_path / "other" / "shd_test.h5").replace(folder / "shd_test.h5")
    assert main(["train", "--data", str(folder), "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err.strip()
    assert "channel counts" in err and "has 700" in err and "has 350" in err, err
    assert not (tmp_path / "never").exists()


def test_files_of_another_channel_count_load(tmp_path, monkeypatch):
    """A file's own channel count (not SHD's 700) is read and pooled."""
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    _pair(tmp_path / "shd", n_channels=350)
    ds = data.load_dataset(tmp_path / "shd", n_bins=5, val_speakers=0, progress=False)
    assert ds.n_channels == 70 and ds.train.x.shape == (8, 5, 70)
    with pytest.raises(ValueError, match="pool=3 does not divide n_channels=350"):
        data.load_dataset(tmp_path / "shd", n_bins=5, pool=3, progress=False)


def test_python_dash_m_is_the_command():
    """``python -m snnplast`` runs the same parser as the console script: same help, same
    one-line refusal of a bad value with exit status 2."""
    import subprocess
    import sys

    ok = subprocess.run([sys.executable, "-m", "snnplast", "train", "--help"],
                        capture_output=True, text=True, timeout=300, check=False)
    assert ok.returncode == 0 and "--method" in ok.stdout, ok.stderr[-2000:]
    bad = subprocess.run([sys.executable, "-m", "snnplast", "train", "--epochs", "0"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode == 2 and "epochs" in bad.stderr, bad.stderr[-2000:]
