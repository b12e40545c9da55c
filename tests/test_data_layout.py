"""The data package's folders: its public names stay where they were, every module imports.

The names below were captured from ``snnplast.data`` and ``snnplast.data.speech`` before the
package was arranged into folders (issue 14, item 4); a user's ``from snnplast.data import X``
must keep working for each of them, and nothing private may leak into the public surface.
"""

import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import snnplast.data
from snnplast import ValidationError

DATA_NAMES = [
    "Acoustics", "BasilarMembrane", "BushyCell", "CLEAN", "Cochlea", "DEFAULT_DATA",
    "EventSplit", "HairCell", "RECORDED", "SHDFormatError", "SHDMissingError",
    "SpeechUnavailableError", "SpikeDataset", "Spikes", "Split", "bin_events", "bin_samples",
    "cache_root", "check_shd_file", "cochlea", "cochlea_batch", "convert_audio",
    "ensure_speech_shd", "load_dataset", "load_recordings", "load_shd_split", "make_speech_shd",
    "make_synth_shd", "plot_sample", "read_wav", "resample", "shd_data_dir", "speech",
    "speech_shd_dir", "split_by_speaker", "tonic_root", "write_shd_h5",
]  # fmt: skip
# Made public after the move, so that the command line and the trainer need no private path.
DATA_NAMES_ADDED = [
    "DEFAULT_SPEECH_PER_CLASS", "SPEAKER_NAMES", "check_data_source", "is_recordings_folder",
    "read_names", "TIME_AXES", "word_span", "check_time_axis",
    # Recordings in any audio format, and a folder of them as a data set.
    "AUDIO_SUFFIXES", "is_audio", "read_audio", "hold_out_speakers", "plot_recording",
    # The data sets known by name (the command line records any other --data as a folder).
    "DATA_NAMES",
    # A data set's test split alone (what `evaluate` scores; SSC's training file is large).
    "load_test_split",
    # Recordings a conversion left out (empty, undecodable), warned about and listed in the file.
    "SkippedRecording", "read_skipped",
]  # fmt: skip
SPEECH_NAMES = [
    "ENGLISH_WORDS", "GERMAN_WORDS", "SHD_KEYS", "Speaker", "Utterance", "VOICE_VARIANTS",
    "make_speakers", "plan_corpus", "synthesize",
]  # fmt: skip
# Run as a script by its own interpreter (see its docstring), never imported.
SCRIPTS = {"snnplast.data._speech.espeak_server"}

ROOT = Path(snnplast.data.__file__).parent


def public(module):
    return sorted(n for n in dir(module) if not n.startswith("_"))


@pytest.mark.parametrize(
    "module, names",
    [("snnplast.data", DATA_NAMES + DATA_NAMES_ADDED), ("snnplast.data.speech", SPEECH_NAMES)],
)
def test_public_names_are_the_ones_before_the_move(module, names):
    module = importlib.import_module(module)
    assert public(module) == sorted(names)
    for name in names:
        scope = {}
        # The very statement users write.
        exec(f"from {module.__name__} import {name}", scope)  # noqa: S102
        assert scope[name] is getattr(module, name)


def test_every_module_imports_and_every_folder_says_what_it_holds():
    packages, modules = [], []
    for info in pkgutil.walk_packages([str(ROOT)], prefix="snnplast.data."):
        (packages if info.ispkg else modules).append(info.name)
        if info.name not in SCRIPTS:
            importlib.import_module(info.name)
    assert len(packages) >= 4
    for name in packages:
        doc = importlib.import_module(name).__doc__
        assert doc and len(doc.strip().splitlines()) == 1, name
    # The folders hold the modules: beside them only the public speech names and the cache.
    flat = {m.rsplit(".", 1)[1] for m in modules if m.count(".") == 2}
    assert flat == {"speech", "_cache"}


def _not_hdf5(tmp):
    (tmp / "notes.txt").write_text("not HDF5")
    return snnplast.data.check_shd_file(tmp / "notes.txt")


# One bad call per folder of the data package (cheap; nothing needs eSpeak NG).
BAD_INPUTS = {
    "_audio": lambda tmp: snnplast.data.resample(np.zeros(10), 0, 16000),
    "_cochlea": lambda tmp: snnplast.data.BasilarMembrane(n_channels=2.5),
    "_cochlea, seeds": lambda tmp: snnplast.data.cochlea_batch(
        [np.ones(4000)], 16000, seeds=[0, 1]
    ),
    "_loading": lambda tmp: snnplast.data.bin_events(np.array([-1.0]), np.array([0])),
    "_loading, speakers": lambda tmp: snnplast.data.split_by_speaker(np.arange(4), 1.5, 0),
    "_loading, name": lambda tmp: snnplast.data.load_dataset(3),
    "_shd": lambda tmp: snnplast.data.write_shd_h5(tmp / "x.h5", [], [], [], [], []),
    "_shd, not HDF5": _not_hdf5,
    "_speech": lambda tmp: snnplast.data.Acoustics(p_room=2.0),
    "_speech, corpus": lambda tmp: snnplast.data.speech.plan_corpus(0, 1),
    "_recordings": lambda tmp: snnplast.data.convert_audio(tmp, tmp / "out.txt"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_validation_error(case, tmp_path):
    """Every part of the data package reports bad input as the project's ValidationError (still
    a ValueError; a TypeError too for a value of the wrong type), in one line, writing nothing."""
    with pytest.raises(ValidationError) as info:
        BAD_INPUTS[case](tmp_path)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TypeError) == (case == "_cochlea")  # n_channels=2.5
    message = str(info.value)
    assert message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["notes.txt"])


# SHD files as users may hold them: written by other tools with other dtypes, or without the
# per-speaker metadata the real files carry. Each loads, and loads what it holds.
SHD_VARIANTS = {
    "no extra/meta_info": {},
    "labels and speakers int64": {"labels": np.int64},
    "labels and speakers uint8": {"labels": np.uint8},
    "times float32": {"times": np.float32},
    "times float64, units int32": {"times": np.float64, "units": np.int32},
}


def _vlen(arrays, dtype):
    out = np.empty(len(arrays), dtype=object)
    out[:] = [np.asarray(a, dtype) for a in arrays]
    return out


def _write_variant(path, n, seed, times=np.float16, units=np.uint16, labels=np.uint16):
    import h5py

    rng = np.random.default_rng(seed)
    t = [np.sort(rng.uniform(0.0, 1.3, rng.integers(1, 30))).astype(times) for _ in range(n)]
    u = [rng.integers(0, 700, x.size) for x in t]
    y, s = rng.integers(0, 3, n), rng.integers(0, 4, n)
    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", data=_vlen(t, times), dtype=h5py.vlen_dtype(times))
        f.create_dataset("spikes/units", data=_vlen(u, units), dtype=h5py.vlen_dtype(units))
        f.create_dataset("labels", data=y.astype(labels))
        f.create_dataset("extra/keys", data=np.array([b"a", b"b", b"c"]))
        f.create_dataset("extra/speaker", data=s.astype(labels))
    return np.stack([snnplast.data.bin_events(a, b, 8, 1.4, 700, 5) for a, b in zip(t, u)]), y


@pytest.mark.parametrize("variant", list(SHD_VARIANTS))
def test_shd_files_of_other_writers_load(tmp_path, variant):
    folder = tmp_path / "shd"
    folder.mkdir()
    _write_variant(folder / "shd_train.h5", 6, 0, **SHD_VARIANTS[variant])
    x, y = _write_variant(folder / "shd_test.h5", 5, 1, **SHD_VARIANTS[variant])
    ds = snnplast.data.load_dataset(
        folder, n_bins=8, val_speakers=1, cache_dir=tmp_path / "cache", progress=False
    )
    np.testing.assert_array_equal(ds.test.x, x)
    np.testing.assert_array_equal(ds.test.y, y)
    assert len(ds.train) + len(ds.val) == 6 and ds.class_names == ("a", "b", "c")


def test_tonic_download_folder_and_a_validation_file(tmp_path):
    import zipfile

    rng = np.random.default_rng(0)

    def write(path, n, speakers):
        times = [np.sort(rng.uniform(0, 1.3, 5)) for _ in range(n)]
        units = [rng.integers(0, 700, 5) for _ in range(n)]
        snnplast.data.write_shd_h5(path, times, units, rng.integers(0, 2, n), speakers, ["a", "b"])

    # As tonic leaves a download: SHD/ holding each real archive beside what it unpacked.
    inner = tmp_path / "root" / "SHD"
    inner.mkdir(parents=True)
    for split, n in (("train", 6), ("test", 3)):
        path = inner / f"shd_{split}.h5"
        write(path, n, np.arange(n) % 3)
        with zipfile.ZipFile(f"{path}.zip", "w") as z:
            z.write(path, path.name)
    ds = snnplast.data.load_dataset(
        tmp_path / "root", n_bins=8, val_speakers=1, cache_dir=tmp_path / "cache", progress=False
    )
    assert (len(ds.train), len(ds.val), len(ds.test)) == (4, 2, 3)
    # An shd_valid.h5 beside them (a split of one's own) is the validation split, whole.
    write(inner / "shd_valid.h5", 2, np.array([7, 8]))
    ds = snnplast.data.load_dataset(
        tmp_path / "root", n_bins=8, cache_dir=tmp_path / "cache", progress=False
    )
    assert (len(ds.train), len(ds.test)) == (6, 3)
    np.testing.assert_array_equal(ds.val.speakers, [7, 8])
