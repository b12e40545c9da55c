"""Synthetic spoken digits, the SHD files made from them, WAV conversion, plots and the CLI.

Tests that synthesise speech need eSpeak NG (``espeakng-loader``, in the ``test`` and ``speech``
extras) and skip without it.
"""

import json
import os
import wave

import h5py
import numpy as np
import pytest

from snnplast._cli import main
from snnplast.data import make_speech_shd
from snnplast.data._speech.speech_shd import DEFAULT_PER_CLASS, held_out_per_class
from snnplast.data.speech import (
    GERMAN_WORDS,
    SHD_KEYS,
    VOICE_VARIANTS,
    plan_corpus,
)

RATE = 16000


def needs_espeak():
    pytest.importorskip("espeakng_loader")


def write_wav(path, x, rate=RATE):
    data = np.round(np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(data.tobytes())


def tone(seconds=0.1, f0=150.0, seed=0):
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12))
    return 0.3 * x / np.abs(x).max() + 0.003 * np.random.default_rng(seed).standard_normal(t.size)


# ---------------------------------------------------------------------------------------------
# The corpus plan


def test_plan_is_deterministic_and_holds_out_speakers_and_voices():
    train, test = plan_corpus(6, 2, seed=5)
    again, _ = plan_corpus(6, 2, seed=5)
    other, _ = plan_corpus(6, 2, seed=6)
    assert train == again and train != other
    assert len(train) == 6 * 20 and len(test) == 2 * 20
    train_ids = {u.speaker.id for u in train}
    test_ids = {u.speaker.id for u in test}
    assert train_ids == set(range(6)) and test_ids == {6, 7}
    assert not {u.speaker.variant for u in train} & {u.speaker.variant for u in test}
    for speaker in train_ids:
        assert sorted(u.label for u in train if u.speaker.id == speaker) == list(range(20))
    german = [u for u in train if u.label >= 10]
    assert all(u.speaker.voice(u.label).startswith("de+") for u in german)
    assert {u.text for u in german} == set(GERMAN_WORDS)
    assert len(SHD_KEYS) == 20 and SHD_KEYS[15] == "fuenf"


def test_plan_rejects_bad_sizes():
    with pytest.raises(ValueError, match="train_speakers"):
        plan_corpus(0, 1)
    assert held_out_per_class(100) == 12 and held_out_per_class(1) == 1


# ---------------------------------------------------------------------------------------------
# eSpeak NG


def test_espeak_is_deterministic_per_request():
    needs_espeak()
    from snnplast.data._speech.espeak import Espeak

    with Espeak() as a, Espeak() as b:
        first = a.synthesize("sieben", "de+f2", pitch=60, seed=3)
        a.synthesize("eight", "en-us+m3", rate=200)
        # Same request after other speech, and in another process: the same samples.
        np.testing.assert_array_equal(a.synthesize("sieben", "de+f2", pitch=60, seed=3), first)
        np.testing.assert_array_equal(b.synthesize("sieben", "de+f2", pitch=60, seed=3), first)
        assert a.sample_rate == 22050 and 0.25 < first.size / a.sample_rate < 1.0
        with pytest.raises(ValueError, match="no voice"):
            a.synthesize("one", "xx-nowhere")
        with pytest.raises(ValueError, match="rate"):
            a.synthesize("one", "en", rate=20)


def test_every_voice_variant_speaks_both_languages():
    needs_espeak()
    from snnplast.data._speech.espeak import Espeak

    with Espeak() as engine:
        for variant in VOICE_VARIANTS:
            for voice, word in ((f"en+{variant}", "three"), (f"de+{variant}", "drei")):
                x = engine.synthesize(word, voice).astype(np.float64)
                assert 0.15 < x.size / engine.sample_rate < 1.5, voice
                assert np.sqrt(np.mean(x**2)) > 300, voice


# ---------------------------------------------------------------------------------------------
# The synthetic SHD


@pytest.fixture(scope="module")
def speech_set(tmp_path_factory):
    needs_espeak()
    out = tmp_path_factory.mktemp("speech") / "set"
    make_speech_shd(out, per_class=1, seed=11, workers=2, progress=False)
    return out


def tonic_samples(folder, train):
    """Read a split through tonic.datasets.SHD, offline: tonic needs <root>/SHD/ with the .h5
    file and the name of its zip archive beside it."""
    tonic = pytest.importorskip("tonic")
    root = folder / "tonic_root"
    (root / "SHD").mkdir(parents=True, exist_ok=True)
    name = "shd_train.h5" if train else "shd_test.h5"
    link = root / "SHD" / name
    if not link.exists():
        link.symlink_to(folder / name)
        (root / "SHD" / f"{name}.zip").touch()
    return tonic.datasets.SHD(save_to=str(root), train=train)


def test_speech_shd_loads_through_tonic(speech_set):
    out = speech_set
    manifest = json.loads((out / "speech_shd.json").read_text())
    for train, n in ((True, 20), (False, 20)):
        data = tonic_samples(out, train)
        assert len(data) == n
        assert data.sensor_size == (700, 1, 1)
        labels = sorted(int(data[i][1]) for i in range(n))
        assert labels == list(range(20))
        events, _ = data[0]
        assert events.dtype.names == ("t", "x", "p")
        assert events["x"].max() < 700 and events["t"].max() < 2e6
        split = manifest["train" if train else "test"]
        counts = [len(data[i][0]) for i in range(n)]
        assert np.mean(counts) == pytest.approx(split["spikes_mean"])
        assert 1000 < split["spikes_min"] <= split["spikes_max"] < 40000
    with h5py.File(out / "shd_train.h5") as f:
        assert [k.decode() for k in f["extra/keys"][()]] == list(SHD_KEYS)
        train_speakers = set(f["extra/speaker"][()])
    with h5py.File(out / "shd_test.h5") as f:
        assert not train_speakers & set(f["extra/speaker"][()])


def test_speech_shd_second_call_is_instant_and_settings_are_checked(speech_set, monkeypatch):
    out = speech_set
    stamp = (out / "shd_train.h5").stat().st_mtime_ns
    from snnplast.data._speech import speech_shd

    def never(*args, **kwargs):
        raise AssertionError("the second call synthesised or ran the cochlea again")

    # With the same settings the set is reused: nothing is spoken, heard or written again.
    monkeypatch.setattr(speech_shd, "synthesize", never)
    monkeypatch.setattr(speech_shd, "cochlea_batch", never)
    make_speech_shd(out, per_class=1, seed=11, progress=False)
    assert (out / "shd_train.h5").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="per_class"):
        make_speech_shd(out, per_class=0)
    assert not [p for p in os.listdir(out) if p.startswith(".")]


def test_show_draws_raster_and_waveform(speech_set, tmp_path):
    out = speech_set
    png = tmp_path / "x.png"
    assert main(["data", "show", str(out / "shd_test.h5"), "--index", "3", "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    from snnplast.data._audio.sidecar import load_sidecar

    clip, rate, start = load_sidecar(out / "shd_test.h5", 3)
    assert rate == 16000 and start == 0.0 and clip.dtype == np.int16


def test_show_rejects_bad_index(speech_set, tmp_path, capsys):
    out = speech_set
    png = tmp_path / "x.png"
    code = main(["data", "show", str(out / "shd_test.h5"), "--index", "20", "--out", str(png)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "out of range" in err and "\n" not in err
    assert not png.exists()


def test_synth_shd_without_espeak_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    from snnplast.data._speech import espeak

    def missing():
        raise espeak.SpeechUnavailableError("speech synthesis needs eSpeak NG: pip install x")

    monkeypatch.setattr(espeak, "espeak_paths", missing)
    code = main(["data", "synth-shd", "--out", str(tmp_path / "o"), "--per-class", "1", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("snnplast data: error: speech synthesis needs eSpeak NG")
    assert not (tmp_path / "o" / "shd_train.h5").exists()


def test_bare_train_without_espeak_says_how_to_get_it(monkeypatch, tmp_path, capsys):
    """The default data set needs the speech extra: without it the bare command stops before
    training, in one line that names the install command and the other data sets."""
    from snnplast.data._speech import espeak

    def missing():
        raise espeak.SpeechUnavailableError("speech synthesis needs eSpeak NG: pip install x")

    monkeypatch.setattr(espeak, "espeak_paths", missing)
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    code = main(["train", "--no-progress", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith("snnplast train: error: speech synthesis needs eSpeak NG: pip install x")
    assert "'synth'" in err
    assert not (tmp_path / "run").exists()
    made = [p for p in (tmp_path / "cache").rglob("*") if p.suffix in (".h5", ".json", ".npz")]
    assert made == []


def test_cli_default_size_is_the_library_default():
    from snnplast._cli import build_parser

    args = build_parser().parse_args(["data", "synth-shd", "--out", "x"])
    assert args.per_class == DEFAULT_PER_CLASS


# ---------------------------------------------------------------------------------------------
# convert-audio


def test_convert_audio_from_file_names(tmp_path):
    src = tmp_path / "wavs"
    src.mkdir()
    write_wav(src / "7_speaker_12.wav", tone(0.12, 150))
    write_wav(src / "sieben_speaker_3_take2.wav", tone(0.08, 220, seed=1))
    write_wav(src / "0_speaker_12.wav", tone(0.1, 120, seed=2))
    (src / "notes.csv").write_text("ignored when no --labels is given\n")
    out = tmp_path / "mine.h5"
    assert main(["data", "convert-audio", str(src), "--out", str(out), "--quiet"]) == 0
    with h5py.File(out) as f:
        # Sorted by file name: 0_speaker_12, 7_speaker_12, sieben_speaker_3_take2.
        assert list(f["labels"][()]) == [0, 7, 17]
        assert list(f["extra/speaker"][()]) == [12, 12, 3]
        assert [k.decode() for k in f["extra/keys"][()]] == list(SHD_KEYS)
        for i, seconds in enumerate((0.1, 0.12, 0.08)):
            t = f["spikes/times"][i].astype(np.float64)
            assert t.size > 50 and t.min() >= 0 and t.max() < seconds + 1e-3
    png = tmp_path / "m.png"
    assert main(["data", "show", str(out), "--index", "2", "--out", str(png)]) == 0


def test_convert_audio_exact_length_is_the_cochlea_itself(tmp_path):
    from snnplast.data import cochlea, convert_audio, read_wav
    from snnplast.data._recordings.convert import _file_seed

    src = tmp_path / "wavs"
    src.mkdir()
    write_wav(src / "3_speaker_5.wav", tone(0.07, 180))
    out = convert_audio(src, tmp_path / "x.h5", seed=4, exact_length=True, progress=False)
    x, rate = read_wav(src / "3_speaker_5.wav")
    want = cochlea(x, rate, seed=_file_seed(4, "3_speaker_5.wav"))
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["spikes/units"][0], want.units)
        np.testing.assert_allclose(f["spikes/times"][0], want.times, rtol=1e-3)


def test_convert_audio_from_csv_with_own_classes(tmp_path):
    src = tmp_path / "wavs"
    src.mkdir()
    write_wav(src / "a.wav", tone(0.06, 150))
    write_wav(src / "b.wav", tone(0.06, 250, seed=1))
    table = tmp_path / "labels.csv"
    table.write_text("file,label,speaker\na.wav,yes,1\nb.wav,no,2\n")
    out = tmp_path / "yn.h5"
    code = main(["data", "convert-audio", str(src), "--out", str(out), "--labels", str(table)])
    assert code == 0
    with h5py.File(out) as f:
        assert [k.decode() for k in f["extra/keys"][()]] == ["no", "yes"]
        assert list(f["labels"][()]) == [1, 0]
        assert list(f["extra/speaker"][()]) == [1, 2]


def bad_folder(tmp_path, case):
    src = tmp_path / "in"
    src.mkdir()
    if case != "empty":
        write_wav(src / "1_speaker_1.wav", tone(0.05))
    if case == "no label":
        write_wav(src / "hello.wav", tone(0.05))
        return src, "hello.wav"
    return src, str(src)


# Several channels are mixed down now (tests/test_audio_formats.py), not refused; a file that
# does not decode among good ones is skipped with a warning (tests/test_user_data.py).
@pytest.mark.parametrize("case", ["no label", "empty"])
def test_convert_audio_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys, case):
    src, culprit = bad_folder(tmp_path, case)
    out = tmp_path / "out.h5"
    code = main(["data", "convert-audio", str(src), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("snnplast data: error:") and "\n" not in err
    assert culprit in err
    assert sorted(os.listdir(tmp_path)) == ["in"]


def test_convert_audio_csv_missing_label(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    write_wav(src / "a.wav", tone(0.05))
    write_wav(src / "b.wav", tone(0.05))
    table = tmp_path / "labels.csv"
    table.write_text("file,label\na.wav,1\n")
    code = main(["data", "convert-audio", str(src), "--out", str(tmp_path / "o.h5"),
                 "--labels", str(table)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "b.wav" in err and "no label" in err
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.slow
def test_speech_shd_is_reproducible(speech_set, tmp_path):
    """Equal settings give identical files, whatever the number of workers."""
    out = speech_set
    again = make_speech_shd(tmp_path / "again", per_class=1, seed=11, workers=1, progress=False)
    for name in ("shd_train.h5", "shd_test.h5"):
        with h5py.File(out / name) as a, h5py.File(again / name) as b:
            for key in ("labels", "extra/speaker", "extra/keys"):
                np.testing.assert_array_equal(a[key][()], b[key][()])
            for key in ("spikes/times", "spikes/units"):
                for x, y in zip(a[key][()], b[key][()]):
                    np.testing.assert_array_equal(x, y)


@pytest.mark.slow
def test_speech_shd_records_training_speech_and_keeps_the_test_split_dry(speech_set, tmp_path):
    """A recording chain changes the training clips only; the manifest names it."""
    from snnplast.data import CLEAN, RECORDED

    out = speech_set
    kept = make_speech_shd(tmp_path / "rec", per_class=1, seed=11, acoustics=RECORDED,
                           progress=False)  # fmt: skip
    assert json.loads((out / "speech_shd.json").read_text())["settings"]["acoustics"] == repr(CLEAN)
    manifest = json.loads((kept / "speech_shd.json").read_text())
    assert manifest["settings"]["acoustics"] == repr(RECORDED)
    assert manifest["settings"]["version"] == 3
    with np.load(out / "shd_test_audio.npz") as a, np.load(kept / "shd_test_audio.npz") as b:
        np.testing.assert_array_equal(a["audio"], b["audio"])
    with np.load(out / "shd_train_audio.npz") as a, np.load(kept / "shd_train_audio.npz") as b:
        assert a["audio"].shape != b["audio"].shape or not np.array_equal(a["audio"], b["audio"])
    with pytest.raises(TypeError, match="acoustics"):
        make_speech_shd(tmp_path / "bad", per_class=1, acoustics="noisy")


# ---------------------------------------------------------------------------------------------
# The public API


def test_speech_namespace_example_runs():
    """The example in ``snnplast.data.speech``'s docstring, run as written: the public names
    reach synthesis and the cochlea."""
    needs_espeak()
    import snnplast
    from snnplast.data import speech

    doc = speech.__doc__
    code = "\n".join(line[4:] for line in doc[doc.index("::") + 2 :].strip("\n").splitlines())
    scope = {"snnplast": snnplast}
    exec(code, scope)
    clips, spikes = scope["clips"], scope["spikes"]
    assert [len(s.times) > 100 for s in spikes] == [True, True]
    assert scope["rate"] > 0 and len(clips) == 2
    assert {int(u) for s in spikes for u in s.units} <= set(range(700))


def test_data_exports_the_cochlea_and_speech_api():
    from snnplast import data

    names = ["Cochlea", "Spikes", "cochlea", "cochlea_batch", "BasilarMembrane", "HairCell", "BushyCell", "make_speech_shd", "ensure_speech_shd", "speech_shd_dir", "convert_audio", "SpeechUnavailableError", "plot_sample", "read_wav"]
    missing = [n for n in names if not hasattr(data, n)]
    assert missing == []
    assert issubclass(data.SpeechUnavailableError, ValueError)
    assert data.Cochlea().n_channels == 700
