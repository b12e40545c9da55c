"""Training on a folder of one's own recordings: ``load_dataset(folder)`` and ``snnplast train
--data FOLDER`` convert it once and hold out whole speakers for the test split. Every recording
is synthesised here (short harmonic tones)."""

import json

import h5py
import numpy as np
import pytest
from wav_files import write_tone

from snnplast import data
from snnplast._cli import main
from snnplast.data._recordings import split as _split
from snnplast.data._shd.file import write_shd_h5


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Five speakers saying two words, FSDD names; one cache for the module's tests (the
    conversion through the cochlea is made once)."""
    root = tmp_path_factory.mktemp("recordings")
    folder = root / "mine"
    for s, name in enumerate(["ann", "bob", "cy", "dee", "eve"]):
        for label, f0 in ((3, 140.0), (7, 260.0)):
            write_tone(folder / f"{label}_{name}_0.wav", f0=f0 * (1 + 0.05 * s), seed=s)
    (folder / "README.md").write_text("my digits\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SNNPLAST_CACHE", str(root / "cache"))
        yield folder


def test_a_folder_of_recordings_is_a_data_set(recordings, tmp_path, monkeypatch):
    before = sorted(p.name for p in recordings.iterdir())
    ds = data.load_dataset(recordings, n_bins=10, val_speakers=1, progress=False)
    # 5 speakers: one held out for the test split (a fifth), one for validation.
    assert len(ds.test) == 2 and len(ds.val) == 2 and len(ds.train) == 6
    speakers = [set(np.unique(s.speakers)) for s in (ds.train, ds.val, ds.test)]
    assert len(speakers[2]) == 1 and not (speakers[0] | speakers[1]) & speakers[2]
    assert ds.class_names[3] == "three" and ds.n_classes == 20  # digits line up with SHD
    assert ds.source == f"recordings:{recordings.resolve()}"
    assert sorted(p.name for p in recordings.iterdir()) == before  # nothing written there
    # The second load converts nothing.
    monkeypatch.setattr(
        "snnplast.data._recordings.cached.convert_recordings",
        lambda *a, **k: pytest.fail("converted twice"),
    )
    again = data.load_dataset(recordings, n_bins=10, val_speakers=1, progress=False)
    np.testing.assert_array_equal(again.test.x, ds.test.x)


def test_hold_out_speakers_keeps_names_and_refuses_one_speaker(tmp_path):
    times = [np.array([0.1, 0.2])] * 4
    units = [np.array([1, 2])] * 4
    source = tmp_path / "one.h5"
    write_shd_h5(source, times, units, [0, 1, 0, 1], [4, 4, 4, 4], ["a", "b"], n_channels=8)
    with pytest.raises(ValueError, match="one speaker .'4'.; a test split") as e:
        _split.hold_out_speakers(source, tmp_path)
    assert "\n" not in str(e.value)
    write_shd_h5(source, [], [], [], [], ["a", "b"], n_channels=8)
    with pytest.raises(ValueError, match="one.h5: holds no recordings$"):
        _split.hold_out_speakers(source, tmp_path)
    write_shd_h5(source, times, units, [0, 1, 0, 1], [0, 1, 2, 2], ["a", "b"], n_channels=8)
    with h5py.File(source, "a") as f:
        f.create_dataset("extra/speaker_names", data=np.array([b"x", b"y", b"z"]))
    test = _split.hold_out_speakers(source, tmp_path, test_speakers=0.5)
    assert len(test) == 2 and set(test) <= {"x", "y", "z"}
    with h5py.File(tmp_path / "shd_test.h5") as f:
        assert f.attrs["n_channels"] == 8
        assert [n.decode() for n in f["extra/speaker_names"][()]] == ["x", "y", "z"]
    with pytest.raises(ValueError, match=r"test_speakers must be a share in \(0, 1\), got 1"):
        _split.hold_out_speakers(source, tmp_path, test_speakers=1)


def test_a_bad_recordings_folder_fails_before_converting(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "bad"
    write_tone(folder / "3_ann_0.wav")
    write_tone(folder / "hello.wav")  # no label
    argv = ["train", "--data", str(folder), "--epochs", "1", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "hello.wav: no label" in err and "\n" not in err
    (folder / "hello.wav").unlink()
    write_tone(folder / "7_ann_1.wav")  # one speaker only
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "every recording is by one speaker ('ann')" in err and "\n" not in err
    assert not (tmp_path / "run").exists()
    assert not list((tmp_path / "cache").rglob("*.h5"))  # nothing converted


@pytest.mark.slow
def test_cli_trains_on_a_folder_of_recordings(recordings, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--data", str(recordings), "--model", "rlif", "--hidden", "4"]
    argv += ["--epochs", "1", "--batch", "4", "--bins", "10", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    assert "test accuracy" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["data"] == str(recordings)
    assert summary["dataset"]["n_classes"] == 20
