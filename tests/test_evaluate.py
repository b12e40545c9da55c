"""``snnplast evaluate``: a trained run's model on another data set, or on a folder of WAV files."""

import json
import shutil

import numpy as np
import pytest
from fake_cochlea import one_spike_cochlea
from wav_files import write_tone

from snnplast import data
from snnplast._cli import main
from snnplast.data import load_dataset
from snnplast.train import TrainConfig, fit
from snnplast.train._evaluate import evaluate, scores_of


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small network trained on a small SHD-layout folder, and that folder."""
    root = tmp_path_factory.mktemp("evaluate")
    cache = root / "cache"
    folder = root / "shd"
    data.make_synth_shd(folder, n_per_class_train=4, n_per_class_test=2)
    dataset = load_dataset(folder, n_bins=20, cache_dir=cache, progress=False)
    config = TrainConfig(model="rlif", hidden=16, epochs=2, batch=16, lr=1e-2, n_bins=20)
    summary = fit(config, dataset, root / "run", progress=False)
    return root / "run", folder, cache, summary


def test_scores_by_hand():
    y = np.array([0, 0, 1, 1, 2])
    scores = np.array(
        [
            [9, 0, 0, 5],  # 0, right
            [0, 9, 0, 5],  # 0 taken for 1
            [0, 9, 0, 5],  # 1, right
            [0, 1, 0, 9],  # 1 taken for 3, a class absent from y; within 0-2 it is 1, right
            [0, 0, 9, 5],  # 2, right
        ],
        np.float32,
    )
    result = scores_of(y, scores, np.array([7, 7, 7, 8, 8]), ["a", "b", "c", "d"])
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["accuracy_present_classes"] == pytest.approx(4 / 5)
    assert result["per_class"] == {
        "a": {"n": 2, "accuracy": 0.5}, "b": {"n": 2, "accuracy": 0.5}, "c": {"n": 1, "accuracy": 1.0}
    }  # fmt: skip
    assert result["per_speaker"] == {
        "7": {"n": 3, "accuracy": 2 / 3},
        "8": {"n": 2, "accuracy": 0.5},
    }
    assert result["speaker_mean_accuracy"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert result["confusion"][1] == [0, 1, 0, 1] and np.sum(result["confusion"]) == 5


def test_evaluate_reproduces_the_trainers_test_accuracy(trained, tmp_path):
    run, folder, cache, summary = trained
    result = evaluate(run, folder, out=tmp_path, cache_dir=cache, progress=False)
    assert result["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-9)
    confusion = np.array(result["confusion"])
    assert confusion.sum() == result["n"] == summary["dataset"]["n_test"]
    assert np.trace(confusion) / confusion.sum() == pytest.approx(result["accuracy"])
    assert sum(v["n"] for v in result["per_speaker"].values()) == result["n"]
    assert sum(v["n"] for v in result["per_class"].values()) == result["n"]
    for name, row in result["per_class"].items():
        k = result["class_names"].index(name)
        assert row["accuracy"] == pytest.approx(confusion[k, k] / confusion[k].sum())
    written = json.loads((tmp_path / "evaluation.json").read_text())
    assert written["accuracy"] == result["accuracy"]
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_takes_one_file_as_its_test_split(trained, tmp_path):
    # shd_test.h5 given itself, and a copy of it kept elsewhere under another name.
    run, folder, cache, summary = trained
    elsewhere = tmp_path / "kept" / "my copy.h5"
    elsewhere.parent.mkdir()
    shutil.copy(folder / "shd_test.h5", elsewhere)
    for file in (folder / "shd_test.h5", elsewhere):
        result = evaluate(run, file, out=tmp_path / "out", cache_dir=cache, progress=False)
        assert result["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-9)
        assert result["n"] == summary["dataset"]["n_test"]
        assert result["scored"] == f"all {result['n']} samples of {file.resolve()}"
        assert result["data"] == f"file:{file.resolve()}"
    assert sorted(p.name for p in elsewhere.parent.iterdir()) == ["my copy.h5"]


def test_evaluate_reads_one_downloaded_file_as_the_file_it_holds(trained, tmp_path, capsys):
    # shd_test.h5.zip kept on its own: it used to end in an OSError traceback (the archive was
    # opened as HDF5 for its speaker names), and a bad one was named by its link in the cache.
    import zipfile

    run, folder, cache, summary = trained
    archive = tmp_path / "shd_test.h5.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(folder / "shd_test.h5", arcname="shd_test.h5")
    result = evaluate(run, archive, out=tmp_path / "out", cache_dir=cache, progress=False)
    assert result["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-9)
    assert result["scored"] == f"all {summary['dataset']['n_test']} samples of {archive}"
    bad = tmp_path / "other.h5.gz"
    bad.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(data.SHDFormatError) as e:
        evaluate(run, bad, out=tmp_path / "out", cache_dir=cache, progress=False)
    assert str(e.value).startswith(f"{bad}: not a readable gzip archive of other.h5")


def test_evaluate_scores_a_folders_own_test_list(trained, tmp_path, capsys, monkeypatch):
    # Speech Commands' layout: the recordings its testing_list.txt names, the ones training on
    # the folder holds out, and no others.
    run, cache = trained[0], tmp_path / "cache"
    monkeypatch.setenv("SNNPLAST_CACHE", str(cache))
    # Which recordings are scored is the point here, not their spikes.
    monkeypatch.setattr("snnplast.data._recordings.convert.cochlea_batch", one_spike_cochlea)
    src = tmp_path / "speech_commands"
    names = ["three/aa_nohash_0.wav", "three/bb_nohash_0.wav", "seven/aa_nohash_1.wav",
             "seven/cc_nohash_0.wav"]  # fmt: skip
    for i, name in enumerate(names):
        write_tone(src / name, f0=140.0 + 60 * i, seed=i)
    (src / "testing_list.txt").write_text("three/bb_nohash_0.wav\nseven/cc_nohash_0.wav\n")
    argv = ["evaluate", str(run), "--data", str(src), "--out", str(tmp_path / "o"), "--no-progress"]
    assert main(argv) == 0
    scored = f"scored: the 2 recordings testing_list.txt names, of 4 in {src}"
    assert scored in capsys.readouterr().out
    result = json.loads((tmp_path / "o" / "evaluation.json").read_text())
    assert result["n"] == 2 and sorted(result["per_speaker"]) == ["bb", "cc"]
    # --all-recordings scores the whole folder, as a folder without a list is scored.
    assert main([*argv, "--all-recordings"]) == 0
    assert f"scored: all 4 recordings of {src}\n" in capsys.readouterr().out
    result = json.loads((tmp_path / "o" / "evaluation.json").read_text())
    assert result["n"] == 4 and sorted(result["per_speaker"]) == ["aa", "bb", "cc"]
    # A list that names none of the folder's recordings is one line (unless it is not read).
    (src / "testing_list.txt").write_text("no/x_nohash_0.wav\n")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "testing_list.txt: names none of the folder's 4 recordings" in err and "\n" not in err
    assert main([*argv, "--all-recordings"]) == 0


def test_cli_evaluates_a_folder_of_recordings_at_any_rate(trained, tmp_path, capsys):
    run, _, cache, _ = trained
    folder = tmp_path / "wav"
    folder.mkdir()
    for i, (label, rate) in enumerate([(3, 8000), (3, 22050), (7, 8000), (7, 44100)]):
        write_tone(folder / f"{label}_speaker_{i % 2}.wav", 0.2, 100 + 40 * label, i, rate)
    out = tmp_path / "out"
    argv = ["evaluate", str(run), "--data", str(folder), "--out", str(out), "--json"]
    argv += ["--no-progress"]
    env_cache = pytest.MonkeyPatch()
    env_cache.setenv("SNNPLAST_CACHE", str(cache))
    try:
        assert main(argv) == 0
        result = json.loads(capsys.readouterr().out)
        # Speakers by their names in the files (speaker_0, speaker_1 number as 0, 1).
        assert result["n"] == 4 and set(result["per_speaker"]) == {"0", "1"}
        assert result["scored"] == f"all 4 recordings of {folder}"  # no test list: every one
        assert set(result["per_class"]) <= set(result["class_names"])
        assert {"3", "7"} == {str(result["class_names"].index(k)) for k in result["per_class"]}
        assert (out / "confusion.png").is_file() and (out / "evaluation.json").is_file()
        converted = list((cache / "recordings").glob("*/shd_test.h5"))
        assert len(converted) == 1
        # A second evaluation reuses the converted recordings.
        stamp = converted[0].stat().st_mtime_ns
        assert main(argv[:-1] + ["--no-progress"]) == 0
        assert converted[0].stat().st_mtime_ns == stamp
        assert "accuracy" in capsys.readouterr().out
    finally:
        env_cache.undo()


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "{tmp}", "--data", "synth"], "a training run?"),
        (["evaluate", "{run}", "--data", "{tmp}/nowhere"], "neither a known name"),
        (["evaluate", "{run}", "--data", "synth", "--all-recordings"],
         "--all-recordings applies to a folder of recordings; synth is not one"),
    ],
)
def test_cli_bad_input_is_one_line(trained, tmp_path, capsys, args, message):
    run = trained[0]
    argv = [a.format(tmp=tmp_path, run=run) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
