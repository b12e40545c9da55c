"""The folder layouts ``convert-audio`` reads: labelled names (ours, the Free Spoken Digit
Dataset's), one folder per label (Speech Commands), a CSV; speaker names mapped to ids.

Every WAV file is synthesised here (a short harmonic tone); nothing reads real data sets.
"""

import json
import os

import h5py
import numpy as np
import pytest
from fake_cochlea import fake_conversion
from wav_files import write_tone as write_wav

from snnplast._cli import main
from snnplast.data import check_data_source, check_shd_file
from snnplast.data._recordings.convert import SPEAKER_NAMES, find_recordings, read_names
from snnplast.data._recordings.layouts import UNKNOWN_SPEAKER, speaker_ids
from snnplast.data.speech import SHD_KEYS


def found(folder, labels=None):
    return [(r.name, r.label, r.speaker) for r in find_recordings(folder, labels)]


def test_free_spoken_digit_names(tmp_path):
    for name in ("7_jackson_32.wav", "0_george_0.wav", "7_speaker_12.wav", "3_yweweler_10.wav"):
        write_wav(tmp_path / name)
    # A data set's own text beside the recordings is left out, not an error.
    (tmp_path / "README.md").write_text("# spoken digits\n")
    (tmp_path / "LICENSE").write_text("CC BY-SA 4.0\n")
    assert found(tmp_path) == [
        ("0_george_0.wav", "0", "george"),
        # The 'speaker' keyword wins over reading "speaker" as a speaker's name.
        ("3_yweweler_10.wav", "3", "yweweler"),
        ("7_jackson_32.wav", "7", "jackson"),
        ("7_speaker_12.wav", "7", "12"),
    ]


def test_speech_commands_folders(tmp_path):
    write_wav(tmp_path / "yes" / "0a7c2a8d_nohash_0.wav")
    write_wav(tmp_path / "yes" / "b5fd26ca_nohash_1.wav")
    write_wav(tmp_path / "no" / "0a7c2a8d_nohash_0.wav")
    write_wav(tmp_path / "no" / "just_a_take.wav")
    write_wav(tmp_path / "no" / "7_speaker_3.wav")
    write_wav(tmp_path / "_background_noise_" / "white_noise.wav", seconds=0.2)
    (tmp_path / "README.md").write_text("not audio, beside the label folders\n")
    (tmp_path / "testing_list.txt").write_text("yes/b5fd26ca_nohash_1.wav\n")
    (tmp_path / "empty").mkdir()
    assert found(tmp_path) == [
        ("no/0a7c2a8d_nohash_0.wav", "no", "0a7c2a8d"),
        ("no/7_speaker_3.wav", "no", "3"),
        ("no/just_a_take.wav", "no", UNKNOWN_SPEAKER),
        ("yes/0a7c2a8d_nohash_0.wav", "yes", "0a7c2a8d"),
        ("yes/b5fd26ca_nohash_1.wav", "yes", "b5fd26ca"),
    ]


def test_csv_speakers_may_be_names(tmp_path):
    write_wav(tmp_path / "a.wav")
    write_wav(tmp_path / "b.wav")
    write_wav(tmp_path / "c.wav")
    table = tmp_path / "labels.csv"
    table.write_text("file,label,speaker\na.wav,yes,Ann Lee\nb.wav,no,\nc.wav,no,bob\n")
    assert found(tmp_path, table) == [
        ("a.wav", "yes", "Ann Lee"),
        ("b.wav", "no", UNKNOWN_SPEAKER),
        ("c.wav", "no", "bob"),
    ]


def test_speaker_ids():
    # Numbered speakers keep their numbers; the gaps name no one.
    ids, table = speaker_ids(["12", "3", "12"])
    assert ids == [12, 3, 12]
    assert len(table) == 13 and table[3] == "3" and table[12] == "12"
    assert set(table) - {"3", "12"} == {""}
    # Any other names: sorted, numbered from 0. A leading zero makes a name, not a number.
    assert speaker_ids(["jackson", "george", "07", "jackson"]) == (
        [2, 1, 0, 2],
        ["07", "george", "jackson"],
    )
    assert speaker_ids(["70000", "1"]) == ([1, 0], ["1", "70000"])  # beyond uint16: names


def test_folders_convert_with_names_and_ids(tmp_path, capsys):
    """End to end: label names become classes (sorted), speaker names ids, both stored and
    printed; a file name shared by two label folders still gets its own cochlea seed."""
    src = tmp_path / "in"
    write_wav(src / "yes" / "aa11_nohash_0.wav", f0=150)
    write_wav(src / "no" / "aa11_nohash_0.wav", f0=150)  # the same sound and name as yes/'s
    write_wav(src / "no" / "bb22_nohash_0.wav", f0=220, seed=1)
    out = tmp_path / "mine.h5"
    assert main(["data", "convert-audio", str(src), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "classes (extra/keys): 0=no 1=yes" in printed
    assert f"speakers ({SPEAKER_NAMES}): 0=aa11 1=bb22" in printed
    check_shd_file(out)
    classes, speakers = read_names(out)
    assert classes == ["no", "yes"] and speakers == ["aa11", "bb22"]
    with h5py.File(out) as f:
        # Sorted by path: no/aa11, no/bb22, yes/aa11.
        assert list(f["labels"][()]) == [0, 0, 1]
        assert list(f["extra/speaker"][()]) == [0, 1, 0]
        first, last = f["spikes/units"][0], f["spikes/units"][2]
        assert first.size > 20 and last.size > 20
        assert first.size != last.size or np.any(first != last)


def test_free_spoken_digits_convert_to_shd_classes(tmp_path, capsys):
    src = tmp_path / "recordings"
    write_wav(src / "3_theo_0.wav")
    write_wav(src / "9_nicolas_12.wav", f0=200)
    out = tmp_path / "fsdd.h5"
    assert main(["data", "convert-audio", str(src), "--out", str(out), "--quiet"]) == 0
    assert "speakers (extra/speaker_names): 0=nicolas 1=theo" in capsys.readouterr().out
    classes, speakers = read_names(out)
    assert classes == list(SHD_KEYS)  # digits line up with SHD's English digits
    assert speakers == ["nicolas", "theo"]
    with h5py.File(out) as f:
        assert list(f["labels"][()]) == [3, 9]
        assert list(f["extra/speaker"][()]) == [1, 0]


def bad_layout(src, case):
    if case == "mixed":
        write_wav(src / "yes" / "a_nohash_0.wav")
        write_wav(src / "3_speaker_1.wav")
        return "3_speaker_1.wav"
    if case == "not audio in a label folder":
        write_wav(src / "yes" / "a_nohash_0.wav")
        (src / "yes" / "b.m4v").write_bytes(b"\0\0\0 ftyp")
        return "b.m4v"
    if case == "not audio beside named recordings":
        write_wav(src / "3_speaker_1.wav")
        (src / "4_speaker_1.docx").write_bytes(b"PK")
        return "4_speaker_1.docx"
    write_wav(src / "hello.wav")  # "no label"
    return "hello.wav"


@pytest.mark.parametrize(
    "case",
    [
        "mixed",
        "not audio in a label folder",
        "not audio beside named recordings",
        "no label",
    ],
)
def test_bad_layouts_are_one_line_and_leave_nothing(tmp_path, capsys, case):
    src = tmp_path / "in"
    src.mkdir()
    culprit = bad_layout(src, case)
    code = main(["data", "convert-audio", str(src), "--out", str(tmp_path / "o.h5"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("snnplast data: error:") and "\n" not in err
    assert culprit in err
    assert sorted(os.listdir(tmp_path)) == ["in"]


def test_audiomnist_one_folder_per_speaker(tmp_path):
    # AudioMNIST: data/SPEAKER/DIGIT_SPEAKER_INDEX.wav at 48 kHz; the folders are speakers, not
    # labels (read as labels, every recording would be classed by its speaker).
    for name in ("01/0_01_0.wav", "01/3_01_5.wav", "02/0_02_0.wav", "02/7_02_12.wav"):
        write_wav(tmp_path / name, rate=48000)
    (tmp_path / "audioMNIST_meta.txt").write_text("{}\n")
    assert found(tmp_path) == [
        ("01/0_01_0.wav", "0", "01"),
        ("01/3_01_5.wav", "3", "01"),
        ("02/0_02_0.wav", "0", "02"),
        ("02/7_02_12.wav", "7", "02"),
    ]


def test_fsdd_repository_reads_its_recordings_folder(tmp_path):
    # The Free Spoken Digit Dataset's repository keeps its recordings in recordings/.
    for name in ("0_jackson_0.wav", "1_george_3.wav", "9_lucas_12.wav"):
        write_wav(tmp_path / "recordings" / name)
    (tmp_path / "README.md").write_text("# FSDD\n")
    (tmp_path / "utils").mkdir()
    (tmp_path / "utils" / "spectogramer.py").write_text("")
    assert found(tmp_path) == [
        ("recordings/0_jackson_0.wav", "0", "jackson"),
        ("recordings/1_george_3.wav", "1", "george"),
        ("recordings/9_lucas_12.wav", "9", "lucas"),
    ]
    # One Speech Commands folder stays a label folder: its names carry speakers, not labels.
    write_wav(tmp_path / "sc" / "yes" / "0a7c2a8d_nohash_0.wav")
    write_wav(tmp_path / "sc" / "yes" / "b5fd26ca_nohash_1.wav")
    assert [r[1] for r in found(tmp_path / "sc")] == ["yes", "yes"]


def _apple_double(path):
    # What macOS leaves beside a file copied to a foreign disk: metadata, not audio.
    path.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(64))


def test_hidden_macos_files_are_left_out(tmp_path):
    flat, folders, table = tmp_path / "flat", tmp_path / "folders", tmp_path / "csv"
    write_wav(flat / "0_jackson_0.wav")
    write_wav(folders / "yes" / "a_nohash_0.wav")
    write_wav(folders / "no" / "b_nohash_0.wav")
    write_wav(table / "a.wav")
    for folder in (flat, folders / "yes", table):
        (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        _apple_double(folder / "._a.wav")
    (table / "labels.csv").write_text("file,label,speaker\na.wav,yes,ann\n")
    assert found(flat) == [("0_jackson_0.wav", "0", "jackson")]
    assert [r[0] for r in found(folders)] == ["no/b_nohash_0.wav", "yes/a_nohash_0.wav"]
    assert found(table, table / "labels.csv") == [("a.wav", "yes", "ann")]


def test_names_of_any_case_and_alphabet_and_links(tmp_path):
    write_wav(tmp_path / "src" / "fünf" / "Jürgen_nohash_0.wav")
    write_wav(tmp_path / "src" / "yes" / "my take 1.WAV")
    (tmp_path / "in").mkdir()
    for label in ("fünf", "yes"):
        os.symlink(tmp_path / "src" / label, tmp_path / "in" / label)  # linked label folders
    assert found(tmp_path / "in") == [
        ("fünf/Jürgen_nohash_0.wav", "fünf", "Jürgen"),
        ("yes/my take 1.WAV", "yes", UNKNOWN_SPEAKER),
    ]


@pytest.mark.parametrize(
    "nesting, depth",
    [
        (("alice/yes", "bob/no"), "two folders deep .alice/yes/."),
        (("yes/alice", "no/bob"), "two folders deep .no/bob/."),
        (("alice/monday/yes", "bob/friday/no"), "three folders deep .alice/monday/yes/."),
    ],
)
def test_recordings_folders_deep_are_one_line(tmp_path, nesting, depth):
    from snnplast.data import load_dataset

    for folder in nesting:
        write_wav(tmp_path / "in" / folder / "1.wav")
    with pytest.raises(ValueError, match=depth) as err:
        find_recordings(tmp_path / "in")
    assert "\n" not in str(err.value) and "--labels" in str(err.value)
    # train --data says the same, not that SHD's files are missing.
    with pytest.raises(ValueError, match=depth):
        load_dataset(tmp_path / "in", cache_dir=tmp_path / "cache", progress=False)
    # A CSV says which level is the label.
    table = tmp_path / "labels.csv"
    rows = [f"{f}/1.wav,{f.split('/')[-1]},{f.split('/')[0]}" for f in nesting]
    table.write_text("file,label,speaker\n" + "\n".join(rows) + "\n")
    assert [r[:2] for r in found(tmp_path / "in", table)] == [
        (f"{f}/1.wav", f.split("/")[-1]) for f in sorted(nesting)
    ]


def _names_of(split, recordings):
    # Channel i fired for recording i; pool=1 keeps channels apart.
    return sorted(recordings[int(np.flatnonzero(x.sum(axis=0))[0])].name for x in split.x)


def test_speech_commands_lists_pick_the_splits(tmp_path, monkeypatch):
    from snnplast.data import load_dataset

    src = tmp_path / "speech_commands"
    for name in ("yes/aa_nohash_0.wav", "yes/bb_nohash_0.wav", "yes/cc_nohash_0.wav",
                 "no/aa_nohash_1.wav", "no/dd_nohash_0.wav", "no/ee_nohash_0.wav"):  # fmt: skip
        write_wav(src / name)
    (src / "testing_list.txt").write_text("yes/bb_nohash_0.wav\nno/dd_nohash_0.wav\nno/gone.wav\n")
    (src / "validation_list.txt").write_text("yes/cc_nohash_0.wav\n")
    monkeypatch.setattr("snnplast.data._recordings.split.converted", fake_conversion)
    recordings = find_recordings(src)
    ds = load_dataset(src, n_bins=4, pool=1, cache_dir=tmp_path / "cache", progress=False)
    assert _names_of(ds.test, recordings) == ["no/dd_nohash_0.wav", "yes/bb_nohash_0.wav"]
    assert _names_of(ds.val, recordings) == ["yes/cc_nohash_0.wav"]
    assert _names_of(ds.train, recordings) == [
        "no/aa_nohash_1.wav", "no/ee_nohash_0.wav", "yes/aa_nohash_0.wav",
    ]  # fmt: skip
    assert ds.class_names == ("no", "yes")
    # Lists that leave nothing to test on are one line, before anything is converted.
    (src / "testing_list.txt").write_text("other/x_nohash_0.wav\n")
    monkeypatch.setattr(
        "snnplast.data._recordings.split.converted", lambda *a, **k: pytest.fail("converted")
    )
    with pytest.raises(ValueError, match="testing_list.txt") as err:
        load_dataset(src, n_bins=4, pool=1, cache_dir=tmp_path / "cache", progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="testing_list.txt"):
        check_data_source(src)  # what train checks before anything else


def test_a_folder_that_only_wraps_the_recordings_is_read_through(tmp_path):
    # AudioMNIST's repository as cloned: its recordings in data/SPEAKER/, scripts beside them.
    for name in ("data/01/0_01_0.wav", "data/02/7_02_1.wav"):
        write_wav(tmp_path / name)
    (tmp_path / "data" / "audioMNIST_meta.txt").write_text("{}\n")
    (tmp_path / "preprocess_data.py").write_text("")
    assert found(tmp_path) == [("data/01/0_01_0.wav", "0", "01"), ("data/02/7_02_1.wav", "7", "02")]


@pytest.mark.slow
def test_train_and_evaluate_on_audiomnist_as_cloned(tmp_path, monkeypatch):
    # The repository's layout at its own 48 kHz, through the cochlea, by the two commands.
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "AudioMNIST"
    for s, speaker in enumerate(("01", "02", "03")):
        for digit, f0 in ((3, 140.0), (7, 260.0)):
            path = src / "data" / speaker / f"{digit}_{speaker}_0.wav"
            write_wav(path, f0=f0 * (1 + 0.05 * s), seed=s, rate=48000)
    run = tmp_path / "run"
    argv = ["train", "--data", str(src), "--model", "rlif", "--hidden", "4", "--epochs", "1"]
    assert main([*argv, "--batch", "4", "--bins", "10", "--no-progress", "--out", str(run)]) == 0
    assert main(["evaluate", str(run), "--data", str(src), "--json"]) == 0
    result = json.loads((run / "evaluate-AudioMNIST" / "evaluation.json").read_text())
    # Scored by digit, not by speaker folder: the classes present are SHD's three and seven.
    assert sorted(result["per_class"]) == ["seven", "three"]
    assert sorted(result["per_speaker"]) == ["01", "02", "03"]


def test_evaluate_numbers_a_folders_words_as_the_model_does(tmp_path):
    # A folder holding some of a model's words sorts them into classes of its own (no=0, yes=1);
    # scored by those numbers against a model of down/no/up/yes, "no" would count as "down".
    from snnplast.data import Split
    from snnplast.train._evaluate import _as_model_classes

    split = Split(x=np.zeros((3, 2, 2), np.uint8), y=np.array([0, 1, 1], np.int32),
                  speakers=np.array([0, 0, 1], np.int32))  # fmt: skip
    model = ["down", "no", "up", "yes"]
    renumbered, names = _as_model_classes(split, ("no", "yes"), model, "in")
    assert list(renumbered.y) == [1, 3, 3] and names == tuple(model)
    assert _as_model_classes(split, ("no", "yes"), None, "in")[0] is split  # an older run
    # Another writer's spelling of the same words.
    respelt, _ = _as_model_classes(split, ("No", "fünf"), ["fuenf", "no"], "in")
    assert list(respelt.y) == [1, 0, 0]
    with pytest.raises(ValueError, match="never learnt \\(maybe\\)") as err:
        _as_model_classes(split, ("maybe", "yes"), model, "in")
    assert "\n" not in str(err.value)
