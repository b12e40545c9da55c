"""What users bring to ``convert-audio`` and ``train --data``: clips that cannot be read among
good ones, one SHD-layout file instead of a folder, a CSV of labels.

Every recording is a short tone written here (tests/wav_files.py) and every spike file is
written by ``write_shd_h5``; nothing reads a real data set.
"""

import re
import warnings
import wave

import h5py
import numpy as np
import pytest
from fake_cochlea import fake_conversion, one_spike_cochlea
from wav_files import write_tone

from snnplast import data
from snnplast._cli import build_parser, main
from snnplast.data._recordings.convert import read_skipped

KEYS = ["zero", "one", "two"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))


def _wav_bytes(samples) -> bytes:
    """A 16 kHz mono WAV file holding `samples` (int16)."""
    import io

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes(np.array(samples, "<i2").tobytes())
    return buffer.getvalue()


# Clips that cannot be converted: case -> (file suffix, its bytes, what its warning must say).
BAD_CLIPS = {
    "zero bytes": (".wav", b"", "is empty (0 bytes)"),
    "no samples": (".wav", _wav_bytes([]), "holds no samples"),
    "two samples": (".wav", _wav_bytes([900, -900]), "at least 10 ms"),
    "silent": (".wav", _wav_bytes([0] * 800), "is silent"),
    "undecodable mp3": (".mp3", b"ID3", "not a readable .mp3 file"),
    "mp3 named .wav": (".wav", b"ID3\x03 this is an mp3, really", "not a readable WAV file"),
    "not flac inside": (".flac", b"fLaC", "not a readable .flac file"),
    # A copy that stopped part-way; it used to end in a traceback reported as a bug.
    "header cut short": (".wav", _wav_bytes(np.ones(800))[:30], "not a readable WAV file"),
}


def _spikes(path):
    with h5py.File(path) as f:
        return [list(t) for t in f["spikes/times"][()]], [list(u) for u in f["spikes/units"][()]]


@pytest.mark.parametrize("case", list(BAD_CLIPS))
def test_a_clip_that_cannot_be_read_is_skipped_and_named(tmp_path, capsys, case):
    src = tmp_path / "in"
    write_tone(src / "3_speaker_1.wav", f0=140.0)
    write_tone(src / "7_speaker_2.wav", f0=260.0, seed=1)
    suffix, content, why = BAD_CLIPS[case]
    bad = src / f"4_speaker_1{suffix}"
    bad.write_bytes(content)
    out = tmp_path / "o.h5"
    assert main(["data", "convert-audio", str(src), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    # One line naming the file and why (the mp3 decoder may add notes of its own on stderr).
    warned = [ln for ln in captured.err.splitlines() if ln.startswith("snnplast data: warning:")]
    assert len(warned) == 1 and why in warned[0]
    assert warned[0].startswith(f"snnplast data: warning: skipped {bad}: ")
    assert "skipped 1 recording " in captured.out and "2 recordings" in captured.out
    with h5py.File(out) as f:
        assert list(f["labels"][()]) == [3, 7]
    (entry,) = read_skipped(out)
    assert entry.startswith(f"{bad.name}: ") and why in entry


def test_the_rest_converts_as_without_the_bad_clip(tmp_path, capsys):
    # The kept recordings' spikes are those of a folder that never held the bad clip.
    with_bad, without = tmp_path / "a", tmp_path / "b"
    for folder in (with_bad, without):
        write_tone(folder / "3_speaker_1.wav", f0=140.0)
        write_tone(folder / "7_speaker_2.wav", f0=260.0, seed=1)
    (with_bad / "5_speaker_1.wav").write_bytes(b"")
    for folder in (with_bad, without):
        assert main(["data", "convert-audio", str(folder), "--out", f"{folder}.h5", "--quiet"]) == 0
    assert _spikes(f"{with_bad}.h5") == _spikes(f"{without}.h5")
    assert read_skipped(f"{without}.h5") == []
    # Nothing left: one line, nothing written.
    for name in ("3_speaker_1.wav", "7_speaker_2.wav"):
        (with_bad / name).write_bytes(b"")
    capsys.readouterr()
    out = tmp_path / "none.h5"
    assert main(["data", "convert-audio", str(with_bad), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("snnplast data: error:") and "none of its 3 recordings" in err[-1]
    assert len(err) == 4 and not out.exists()  # three warnings and the error


def test_a_cached_conversion_still_says_what_it_left_out(tmp_path, monkeypatch):
    # The per-clip warnings come with the conversion only; a later load that reuses it says in
    # one warning how many were left out and where they are listed (evaluate's and train's path).
    # What is left out is decided before the cochlea runs: a stand-in does for it.
    monkeypatch.setattr("snnplast.data._recordings.convert.cochlea_batch", one_spike_cochlea)
    src = tmp_path / "in"
    write_tone(src / "3_speaker_1.wav", f0=140.0)
    write_tone(src / "7_speaker_2.wav", f0=260.0, seed=1)
    (src / "5_speaker_1.wav").write_bytes(b"")
    with pytest.warns(data.SkippedRecording, match="5_speaker_1.wav: is empty"):
        data.load_recordings(src, n_bins=4, progress=False)
    for load in (
        lambda: data.load_recordings(src, n_bins=4, progress=False),
        lambda: data.load_dataset(src, n_bins=4, val_speakers=0, progress=False),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load()
        (warned,) = [w for w in caught if issubclass(w.category, data.SkippedRecording)]
        message = str(warned.message)
        assert message.startswith(f"{src}: 1 recording was left out when it was converted")
        assert "\n" not in message
        listed = re.search(r"listed in (\S+\.h5) ", message).group(1)
        assert read_skipped(listed) == ["5_speaker_1.wav: is empty (0 bytes)"]


def test_speech_commands_lists_hold_after_a_skipped_clip(tmp_path, monkeypatch):
    # A clip left out of the conversion must not shift the others into the wrong split.
    src = tmp_path / "sc"
    for i, name in enumerate(("yes/aa_nohash_0.wav", "yes/bb_nohash_0.wav", "no/cc_nohash_0.wav",
                              "no/dd_nohash_0.wav")):  # fmt: skip
        write_tone(src / name, f0=120.0 + 40 * i, seed=i)
    (src / "no" / "ab_nohash_0.wav").write_bytes(b"")  # sorts between the others
    (src / "testing_list.txt").write_text("yes/bb_nohash_0.wav\nno/dd_nohash_0.wav\n")
    with pytest.warns(data.SkippedRecording, match="ab_nohash_0.wav: is empty"):
        ds = data.load_dataset(src, n_bins=4, val_speakers=0, progress=False)
    assert sorted(ds.class_names[y] for y in ds.test.y) == ["no", "yes"]
    assert len(ds.train) == 2
    speaker_names = data.read_names(
        next((tmp_path / "cache" / "recordings").glob("*/shd_test.h5"))
    )[1]
    assert sorted(speaker_names[s] for s in ds.test.speakers) == ["bb", "dd"]
    assert sorted(speaker_names[s] for s in ds.train.speakers) == ["aa", "cc"]


def _events(n, seed, speakers, n_channels=700):
    rng = np.random.default_rng(seed)
    # Times as the file stores them (float16), so binning them here is what loading gives.
    times = [np.sort(rng.uniform(0.0, 1.3, size=rng.integers(1, 30))) for _ in range(n)]
    times = [t.astype(np.float16).astype(np.float32) for t in times]
    units = [rng.integers(0, n_channels, size=t.size) for t in times]
    return times, units, rng.integers(0, len(KEYS), size=n), np.arange(n) % speakers


def test_one_file_trains_with_whole_speakers_held_out(tmp_path, capsys):
    file = tmp_path / "mine" / "recorded.h5"
    file.parent.mkdir()
    times, units, labels, speakers = _events(30, 0, speakers=5)
    data.write_shd_h5(file, times, units, labels, speakers, KEYS)
    ds = data.load_dataset(file, n_bins=10, val_speakers=1, progress=True)
    assert "recorded.h5: test speakers (never trained on): " in capsys.readouterr().out
    assert len(ds.train) + len(ds.val) + len(ds.test) == 30
    held = [set(np.unique(s.speakers)) for s in (ds.train, ds.val, ds.test)]
    assert len(held[2]) == 1 and len(held[1]) == 1 and not (held[0] | held[1]) & held[2]
    assert ds.source == f"file:{file.resolve()}" and ds.class_names == tuple(KEYS)
    # Every sample is where it was: the test split is the held-out speaker's samples, binned.
    (speaker,) = held[2]
    mine = np.flatnonzero(speakers == speaker)
    expected = data.bin_samples([times[i] for i in mine], [units[i] for i in mine], 10, 1.4, 700, 5)
    np.testing.assert_array_equal(ds.test.x, expected)
    assert sorted(p.name for p in file.parent.iterdir()) == ["recorded.h5"]  # nothing written


@pytest.mark.parametrize("kind", ["zip", "gz"])
def test_one_downloaded_file_trains_as_the_file_it_holds(tmp_path, kind):
    # `train --data FILE.h5.zip` is `train --data FILE.h5`: the same splits, the archive
    # unpacked into the cache and nothing written beside it.
    import gzip
    import zipfile

    file = tmp_path / "plain" / "recorded.h5"
    file.parent.mkdir()
    data.write_shd_h5(file, *_events(30, 0, speakers=5), KEYS)
    archive = tmp_path / "downloads" / f"recorded.h5.{kind}"
    archive.parent.mkdir()
    if kind == "gz":
        archive.write_bytes(gzip.compress(file.read_bytes()))
    else:
        with zipfile.ZipFile(archive, "w") as z:
            z.write(file, arcname=file.name)
    data.check_data_source(archive)  # what `train` checks first
    want = data.load_dataset(file, n_bins=10, val_speakers=1, progress=False)
    got = data.load_dataset(archive, n_bins=10, val_speakers=1, progress=False)
    for split in ("train", "val", "test"):
        for field in ("x", "y", "speakers"):
            np.testing.assert_array_equal(
                getattr(getattr(want, split), field), getattr(getattr(got, split), field)
            )
    assert got.class_names == tuple(KEYS) and got.source == f"file:{archive.resolve()}"
    assert [p.name for p in archive.parent.iterdir()] == [archive.name]
    # An archive that is not one is a line naming it, as in a folder of downloads.
    archive.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(data.SHDFormatError, match=f"{archive}: not a readable"):
        data.load_dataset(archive, progress=False)


@pytest.mark.parametrize(
    "case, message",
    [
        ("part of a set", "is one file of the SHD set beside it; to train on it and test on"),
        ("one speaker", "every sample is by one speaker (0)"),
        ("no samples", "holds no samples"),
        ("a recording", "is one recording; --data takes a folder of recordings"),
        ("not hdf5", "not an HDF5 file"),
    ],
)  # fmt: skip
def test_one_file_that_cannot_be_trained_on_is_one_line(tmp_path, capsys, case, message):
    folder = tmp_path / "d"
    folder.mkdir()
    file = folder / "shd_train.h5"
    if case == "part of a set":
        data.write_shd_h5(file, *_events(6, 0, speakers=2), KEYS)
        data.write_shd_h5(folder / "shd_test.h5", *_events(4, 1, speakers=2), KEYS)
    elif case == "one speaker":
        data.write_shd_h5(file, *_events(6, 0, speakers=1), KEYS)
    elif case == "no samples":
        data.write_shd_h5(file, *_events(0, 0, speakers=1), KEYS)
    elif case == "a recording":
        file = folder / "3_speaker_1.wav"
        write_tone(file)
    else:
        file.write_text("not hdf5")
    out = tmp_path / "run"
    assert main(["train", "--data", str(file), "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and str(file) in err
    assert not out.exists()


def _csv_folder(tmp_path):
    """Recordings named by nothing but a CSV: three speakers saying two words."""
    src = tmp_path / "takes"
    rows = ["file,label,speaker"]
    for s, speaker in enumerate(("ann", "bob", "cy")):
        for word, f0 in (("three", 140.0), ("seven", 260.0)):
            name = f"take {s}{word[0]}.wav"
            write_tone(src / name, f0=f0, seed=s)
            rows.append(f"{name},{word},{speaker}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return src, tmp_path / "labels.csv"


def test_train_takes_labels_from_a_csv(tmp_path, monkeypatch, capsys):
    src, labels = _csv_folder(tmp_path)
    # The CLI records the CSV with the run, as an absolute path (for --resume elsewhere).
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["train", "--data", "takes", "--labels", "labels.csv"])
    from snnplast._cli._train import config_from_args

    config = config_from_args(args, "bptt")
    assert config.labels == str(labels.resolve()) and config.data == str(src.resolve())
    # Without the CSV the names carry no labels: one line, before anything is converted.
    assert main(["train", "--data", str(src), "--epochs", "1", "--out", "run"]) == 2
    assert "no label" in capsys.readouterr().err
    monkeypatch.setattr(
        "snnplast.data._recordings.split.converted",
        fake_conversion,
    )
    ds = data.load_dataset(src, labels=labels, n_bins=4, pool=1, val_speakers=0, progress=False)
    assert ds.class_names[3] == "three" and ds.n_classes == 20  # CSV words line up with SHD's
    assert len(ds.test) == 2 and len(ds.train) == 4
    # The CSV goes with a folder of recordings only.
    with pytest.raises(ValueError, match="label a folder of recordings; 'synth' is not one"):
        data.load_dataset("synth", labels=labels)


@pytest.mark.parametrize("name", ["ssc_test.h5", "words.hdf5"])
def test_one_file_of_ssc_layout_is_a_test_split(tmp_path, name):
    # SSC's 35 words, the class names read from the file itself (SHD has 20).
    keys = [f"word{i}" for i in range(35)]
    file = tmp_path / name
    times, units, _, speakers = _events(8, 3, speakers=2)
    labels = np.arange(8) * 4
    data.write_shd_h5(file, times, units, labels, speakers, keys)
    split, names, source = data.load_test_split(file, n_bins=10, progress=False)
    assert names == tuple(keys) and source == f"file:{file.resolve()}"
    np.testing.assert_array_equal(split.y, labels)
    np.testing.assert_array_equal(split.x, data.bin_samples(times, units, 10, 1.4, 700, 5))


def test_show_of_a_folder_or_of_an_empty_file_is_one_line(tmp_path, capsys):
    folder = tmp_path / "set"
    folder.mkdir()
    data.write_shd_h5(folder / "shd_test.h5", *_events(2, 0, speakers=1), KEYS)
    data.write_shd_h5(tmp_path / "empty.h5", *_events(0, 0, speakers=1), KEYS)
    png = tmp_path / "x.png"
    cases = {
        folder: f"{folder}: is a folder; pass one SHD-layout .h5 file of it (shd_test.h5)",
        tmp_path / "empty.h5": f"{tmp_path / 'empty.h5'}: holds no samples",
    }
    for given, message in cases.items():
        assert main(["data", "show", str(given), "--out", str(png)]) == 2
        assert capsys.readouterr().err.strip() == f"snnplast data: error: {message}"
    assert not png.exists()
