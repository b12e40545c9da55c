"""SSC, the Spiking Speech Commands: SHD's sibling (same HDF5 layout, 35 classes, three files).

Real SSC cannot be downloaded here, so each test writes a few samples per file in SSC's layout
with the project's own writer and checks what a user holding the real files would do with them:
a folder of the three files (directly, in tonic's ``SSC/``, or as the downloads' archives),
``--data ssc``, the official validation file as the validation split, and one-line errors for a
folder missing some of them.
"""

import gzip
import os
import shutil
import zipfile

import numpy as np
import pytest

from snnplast import data
from snnplast.data._shd import tonic_split as _tonic_split

# 35 words as in SSC's extra/keys (Speech Commands v0.02).
KEYS = [
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward",
    "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one",
    "right", "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow",
    "yes", "zero",
]  # fmt: skip
SIZES = {"train": 7, "valid": 4, "test": 5}
# Disjoint speakers per file, as the authors split them.
FIRST_SPEAKER = {"train": 0, "valid": 20, "test": 40}


def _events(split: str):
    rng = np.random.default_rng(len(split) + SIZES[split])
    n = SIZES[split]
    times = [np.sort(rng.uniform(0.0, 1.3, size=rng.integers(1, 40))) for _ in range(n)]
    units = [rng.integers(0, 700, size=t.size) for t in times]
    labels = rng.integers(0, len(KEYS), size=n)
    speakers = FIRST_SPEAKER[split] + rng.integers(0, 3, size=n)
    return times, units, labels, speakers


def _write(folder, splits=("train", "valid", "test")):
    folder.mkdir(parents=True, exist_ok=True)
    for split in splits:
        data.write_shd_h5(folder / f"ssc_{split}.h5", *_events(split), KEYS)
    return folder


def _expected(split: str, n_bins=8, pool=5) -> np.ndarray:
    # An independent reference: each sample binned on its own, from the float16 times stored.
    times, units, _, _ = _events(split)
    return np.stack(
        [
            data.bin_events(np.asarray(t, np.float16), u, n_bins, 1.4, 700, pool)
            for t, u in zip(times, units, strict=True)
        ]
    )


def _load(where, tmp_path, **kwargs):
    return data.load_dataset(
        where, n_bins=8, pool=5, cache_dir=tmp_path / "cache", progress=False, **kwargs
    )


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_ssc_folder_uses_its_own_validation_file(tmp_path, monkeypatch):
    folder = _write(tmp_path / "ssc")
    before = _listing(folder)
    # SSC's training file is 75k samples: the loader must never hold them all as event lists,
    # so it reads a chunk at a time (3 samples here, so that chunks meet inside every file).
    monkeypatch.setattr(_tonic_split, "read_shd_events", lambda *a, **k: pytest.fail("all read"))
    monkeypatch.setattr("snnplast.data._shd.file._CHUNK", 3)
    dataset = _load(folder, tmp_path)
    assert dataset.source.startswith("ssc:")
    assert dataset.class_names == tuple(KEYS) and dataset.n_classes == 35
    assert (dataset.n_channels, dataset.n_bins) == (140, 8)
    for name, split in (("train", "train"), ("val", "valid"), ("test", "test")):
        got = getattr(dataset, name)
        _, _, labels, speakers = _events(split)
        # Every sample of the file, in order: SSC's training file is not split again.
        np.testing.assert_array_equal(got.x, _expected(split))
        np.testing.assert_array_equal(got.y, labels)
        np.testing.assert_array_equal(got.speakers, speakers)
    assert _listing(folder) == before


def test_ssc_through_tonic_reads_the_same_events(tmp_path):
    folder = _write(tmp_path / "ssc")
    for split in ("train", "valid", "test"):
        bulk = data.load_shd_split(folder, split, cache_dir=tmp_path / "c", progress=False)
        slow = data.load_shd_split(
            folder, split, cache_dir=tmp_path / "c", via_tonic=True, progress=False
        )
        assert bulk.path.name == f"ssc_{split}.h5" and slow.class_names == tuple(KEYS)
        np.testing.assert_array_equal(bulk.speakers, _events(split)[3])
        for a, b in zip(bulk.times, slow.times, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-6)
    # tonic.datasets.SSC looks in <root>/SSC/: the staged layout is named so.
    staged = data.tonic_root(folder / "ssc_valid.h5", tmp_path / "c")
    assert (staged / "SSC" / "ssc_valid.h5").is_file()


def _zip(path):
    with zipfile.ZipFile(f"{path}.zip", "w") as z:
        z.write(path, path.name)
    path.unlink()


def _gz(path):
    with open(path, "rb") as src, gzip.open(f"{path}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()


def test_ssc_subfolder_and_downloaded_archives(tmp_path):
    # tonic's layout (SSC/ under the folder given), two files still as downloaded.
    root = tmp_path / "datasets"
    inner = _write(root / "SSC")
    _zip(inner / "ssc_train.h5")
    _gz(inner / "ssc_test.h5")
    before = _listing(root)
    dataset = _load(root, tmp_path)
    np.testing.assert_array_equal(dataset.train.x, _expected("train"))
    np.testing.assert_array_equal(dataset.val.x, _expected("valid"))
    np.testing.assert_array_equal(dataset.test.x, _expected("test"))
    assert _listing(root) == before  # unpacked into the cache, never beside the archives


def test_data_ssc_is_the_folder_under_snnplast_data(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNPLAST_DATA", str(tmp_path / "data"))
    assert "ssc" in data.DATA_NAMES
    with pytest.raises(data.SHDMissingError) as err:
        _load("ssc", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "data" / "ssc") in message and "ssc_valid.h5" in message
    assert "\n" not in message
    _write(tmp_path / "data" / "ssc")
    data.check_data_source("ssc", cache_dir=tmp_path / "cache")
    dataset = _load("ssc", tmp_path)
    assert dataset.source == f"ssc:{(tmp_path / 'data' / 'ssc').resolve()}"
    assert len(dataset.val) == SIZES["valid"]


@pytest.mark.parametrize(
    "present, missing",
    [(("train", "test"), ("ssc_valid.h5",)), (("train",), ("ssc_valid.h5", "ssc_test.h5"))],
)
def test_ssc_folder_missing_a_file_names_it(tmp_path, present, missing):
    folder = _write(tmp_path / "ssc", present)
    calls = [
        lambda: data.check_data_source(folder, cache_dir=tmp_path / "cache"),
        lambda: _load(folder, tmp_path),
    ]
    for call in calls:
        with pytest.raises(data.SHDMissingError) as err:
            call()
        message = str(err.value)
        assert "\n" not in message and f"ssc_{present[0]}.h5" in message
        assert all(name in message for name in missing), message
    # Not taken for a folder of recordings either.
    assert not data.is_recordings_folder(folder)


@pytest.mark.slow
def test_train_and_evaluate_on_an_ssc_folder(tmp_path, monkeypatch):
    from snnplast._cli import main

    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    folder = _write(tmp_path / "ssc")
    run = tmp_path / "run"
    args = ["train", "--data", str(folder), "--epochs", "1", "--hidden", "8", "--bins", "8"]
    assert main([*args, "--batch", "4", "--out", str(run)]) == 0
    assert main(["evaluate", str(run), "--data", str(folder), "--json"]) == 0
    assert os.path.isfile(run / f"evaluate-{folder.name}" / "evaluation.json")


def test_scoring_reads_only_the_test_file(tmp_path):
    # What `snnplast evaluate RUN --data FOLDER` scores: the test file, even alone in its folder.
    folder = _write(tmp_path / "ssc", ("test",))
    split, names, source = data.load_test_split(
        folder, n_bins=8, cache_dir=tmp_path / "cache", progress=False
    )
    np.testing.assert_array_equal(split.x, _expected("test"))
    assert names == tuple(KEYS) and source == f"ssc:{folder.resolve()}"
    (folder / "ssc_test.h5").unlink()
    _write(folder, ("valid",))
    with pytest.raises(data.SHDMissingError, match="ssc_test.h5") as err:
        data.load_test_split(folder, cache_dir=tmp_path / "cache", progress=False)
    assert "\n" not in str(err.value)


def test_a_folder_holding_both_sets_is_one_line(tmp_path):
    # tonic's download root after SHD and SSC were both fetched: which one is meant is unknown.
    _write(tmp_path / "root" / "SSC")
    (tmp_path / "root" / "SHD").mkdir()
    data.write_shd_h5(tmp_path / "root" / "SHD" / "shd_train.h5", *_events("train"), KEYS)
    with pytest.raises(ValueError, match="holds the files of SHD and SSC") as err:
        _load(tmp_path / "root", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "root" / "SSC") in message and "\n" not in message
    assert len(_load(tmp_path / "root" / "SSC", tmp_path).val) == SIZES["valid"]
