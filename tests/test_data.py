"""The data package: SHD file format, tonic round trip without network, binning, splits, caching."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import h5py
import numpy as np
import pytest
import tonic.dataset
import tonic.datasets
import tonic.download_utils

from snnplast import data
from snnplast.data._loading import loader as _loader
from snnplast.data._shd import tonic_split as _tonic_split

KEYS = ["zero", "one", "two"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Keep caches and data lookups inside tmp_path, and make every download attempt fail loudly."""
    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SNNPLAST_DATA", str(tmp_path / "data"))
    calls = []

    def no_network(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(tonic.download_utils, "download_url", no_network)
    monkeypatch.setattr(tonic.download_utils, "download_and_extract_archive", no_network)
    monkeypatch.setattr(tonic.dataset, "download_and_extract_archive", no_network)
    monkeypatch.setattr(tonic.datasets.SHD, "download", no_network)
    yield calls
    assert calls == [], "something tried to download"


def _events(n, seed=0, n_spikes=40):
    rng = np.random.default_rng(seed)
    times = [np.sort(rng.uniform(0.0, 1.3, size=rng.integers(0, n_spikes))) for _ in range(n)]
    units = [rng.integers(0, 700, size=t.size) for t in times]
    labels = rng.integers(0, len(KEYS), size=n)
    speakers = rng.integers(0, 4, size=n)
    return times, units, labels, speakers


def _write_pair(folder: Path, n_train=12, n_test=6):
    folder.mkdir(parents=True, exist_ok=True)
    train = _events(n_train, seed=1)
    test = _events(n_test, seed=2)
    data.write_shd_h5(folder / "shd_train.h5", *train, KEYS)
    data.write_shd_h5(folder / "shd_test.h5", *test, KEYS)
    return train, test


def _listing(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- SHD file format and the tonic round trip ---------------------------------------------------


def test_write_layout_matches_shd(tmp_path):
    times, units, labels, speakers = _events(5)
    path = data.write_shd_h5(tmp_path / "shd_train.h5", times, units, labels, speakers, KEYS)
    with h5py.File(path, "r") as f:
        assert h5py.check_vlen_dtype(f["spikes/times"].dtype) == np.float16
        assert h5py.check_vlen_dtype(f["spikes/units"].dtype) == np.uint16
        assert f["labels"].dtype == np.uint16 and f["extra/speaker"].dtype == np.uint16
        assert [k.decode() for k in f["extra/keys"][()]] == KEYS
        for name in ("age", "gender", "body_height"):
            assert f"extra/meta_info/{name}" in f
    assert data.check_shd_file(path) == path.absolute()


def test_round_trip_through_tonic(tmp_path):
    times, units, labels, speakers = _events(7)
    folder = tmp_path / "user"
    folder.mkdir()
    data.write_shd_h5(folder / "shd_train.h5", times, units, labels, speakers, KEYS)
    before = _listing(folder)

    root = data.tonic_root(folder / "shd_train.h5")
    dataset = tonic.datasets.SHD(save_to=str(root), train=True)
    assert len(dataset) == 7
    assert [k.decode() for k in dataset.classes] == KEYS
    np.testing.assert_array_equal(dataset.speaker, speakers)
    for i in range(7):
        events, target = dataset[i]
        expected = times[i].astype(np.float16).astype(np.float64)
        # tonic returns whole microseconds (truncated) of the float16 seconds.
        np.testing.assert_allclose(events["t"] * 1e-6, expected, atol=1.01e-6)
        np.testing.assert_array_equal(events["x"], units[i])
        assert target == labels[i]

    via_tonic = data.load_shd_split(folder, True, via_tonic=True, progress=False)
    bulk = data.load_shd_split(folder, True, progress=False)
    for split in (via_tonic, bulk):
        np.testing.assert_array_equal(split.labels, labels)
        np.testing.assert_array_equal(split.speakers, speakers)
        assert split.class_names == tuple(KEYS)
        for i in range(7):
            np.testing.assert_allclose(split.times[i], times[i], rtol=2**-11, atol=1e-6)
            np.testing.assert_array_equal(split.units[i], units[i])
    for i in range(7):
        np.testing.assert_array_equal(bulk.times[i], times[i].astype(np.float16))
    assert _listing(folder) == before, "the user's folder must not be written to"


def test_tonic_layout_used_in_place(tmp_path):
    folder = tmp_path / "downloaded" / "SHD"
    folder.mkdir(parents=True)
    data.write_shd_h5(folder / "shd_test.h5", *_events(3), KEYS)
    (folder / "shd_test.h5.zip").touch()
    assert data.tonic_root(folder / "shd_test.h5") == folder.parent
    split = data.load_shd_split(folder.parent, False, progress=False)
    assert len(split.labels) == 3
    assert not (tmp_path / "cache" / "tonic").exists()


def test_tonic_never_downloads(tmp_path):
    # Even if tonic judged the data absent, the class used refuses to download.
    empty = tmp_path / "empty"
    with pytest.raises(data.SHDMissingError, match="never downloads"):
        _tonic_split._shd_class()(save_to=str(empty), train=True)
    assert not empty.exists() or _listing(empty) == []


def test_linked_split_keeps_its_name(tmp_path):
    folder = tmp_path / "user"
    folder.mkdir()
    data.write_shd_h5(folder / "shd_train.h5", *_events(4), KEYS)
    (folder / "shd_test.h5").symlink_to(folder / "shd_train.h5")
    assert len(data.load_shd_split(folder, False, progress=False).labels) == 4


def test_staging_copies_when_symlinks_fail(tmp_path, monkeypatch):
    folder = tmp_path / "user"
    folder.mkdir()
    data.write_shd_h5(folder / "shd_train.h5", *_events(4), KEYS)

    def no_symlink(*args, **kwargs):
        raise OSError("symlinks not allowed")

    monkeypatch.setattr(os, "symlink", no_symlink)
    split = data.load_shd_split(folder, True, progress=False)
    assert len(split.labels) == 4
    staged = data.tonic_root(folder / "shd_train.h5") / "SHD" / "shd_train.h5"
    assert staged.is_file() and not staged.is_symlink()


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (dict(units=[np.array([3, 700])]), "700"),
        (dict(times=[np.array([0.1, -0.5])]), "-0.5"),
        (dict(labels=[3]), "labels"),
        (dict(speakers=[-1]), "speakers"),
        (dict(times=[np.array([0.1])]), "must match"),
    ],
)
def test_write_validates_and_leaves_nothing(tmp_path, bad, fragment):
    args = dict(
        times=[np.array([0.1, 0.2])], units=[np.array([3, 4])], labels=[0], speakers=[0]
    )
    args.update(bad)
    with pytest.raises(ValueError) as err:
        data.write_shd_h5(tmp_path / "x.h5", keys=KEYS, **args)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_write_lengths_mismatch(tmp_path):
    with pytest.raises(ValueError, match="differ in length"):
        data.write_shd_h5(tmp_path / "x.h5", [np.zeros(1)], [np.zeros(1, int)], [0, 1], [0], KEYS)


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "shd_train.h5"
    data.write_shd_h5(path, *_events(3), KEYS)
    original = path.read_bytes()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(data._shd.file, "_vlen", explode)
    with pytest.raises(RuntimeError):
        data.write_shd_h5(path, *_events(5), KEYS)
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["shd_train.h5"]


def test_written_files_get_plain_permissions(tmp_path):
    """Files written atomically get what a plain ``open`` gives (0o666 less the umask), not the
    owner-only mode of a temporary file: a shared cache stays readable."""
    import os

    from snnplast.data._cache import save_npz_atomic
    from snnplast.train._checkpoint import write_json

    old = os.umask(0o022)
    try:
        paths = [
            data.write_shd_h5(tmp_path / "x.h5", *_events(2), KEYS),
            save_npz_atomic(tmp_path / "x.npz", a=np.zeros(2)),
        ]
        write_json(tmp_path / "x.json", {"a": 1})
        paths.append(tmp_path / "x.json")
    finally:
        os.umask(old)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in paths} == {
        "x.h5": "0o644", "x.npz": "0o644", "x.json": "0o644"
    }


# --- errors for missing and damaged files --------------------------------------------------------


def test_missing_file_says_where(tmp_path):
    path = tmp_path / "nowhere" / "shd_train.h5"
    with pytest.raises(data.SHDMissingError) as err:
        data.check_shd_file(path)
    message = str(err.value)
    assert str(path) in message and "put shd_train.h5" in message and "\n" not in message
    assert isinstance(err.value, FileNotFoundError)


def test_truncated_and_non_hdf5(tmp_path):
    good = tmp_path / "good.h5"
    data.write_shd_h5(good, *_events(20, n_spikes=200), KEYS)
    truncated = tmp_path / "shd_train.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(data.SHDFormatError) as err:
        data.check_shd_file(truncated)
    assert str(truncated) in str(err.value) and "truncated" in str(err.value)
    assert "\n" not in str(err.value) and isinstance(err.value, ValueError)

    text = tmp_path / "shd_test.h5"
    text.write_text("<html>404</html>")
    with pytest.raises(data.SHDFormatError, match="not an HDF5 file") as err:
        data.check_shd_file(text)
    assert str(text) in str(err.value)

    archive = tmp_path / "zipped.h5"
    archive.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(data.SHDFormatError, match="unzip"):
        data.check_shd_file(archive)


def test_wrong_layout_names_missing_dataset(tmp_path):
    path = tmp_path / "shd_train.h5"
    data.write_shd_h5(path, *_events(3), KEYS)
    with h5py.File(path, "a") as f:
        del f["extra/keys"]
    with pytest.raises(data.SHDFormatError) as err:
        data.check_shd_file(path)
    assert str(path) in str(err.value) and "extra/keys" in str(err.value)
    assert "\n" not in str(err.value)


def test_wrong_layout_is_caught_before_tonic(tmp_path, monkeypatch):
    folder = tmp_path / "user"
    folder.mkdir()
    with h5py.File(folder / "shd_train.h5", "w") as f:
        f["labels"] = np.zeros(3, np.uint16)
    monkeypatch.setattr(_tonic_split, "_shd_class", lambda: pytest.fail("tonic reached"))
    with pytest.raises(data.SHDFormatError, match="spikes/times"):
        data.load_shd_split(folder, True, progress=False)


def test_load_dataset_missing_files(tmp_path):
    folder = tmp_path / "user"
    folder.mkdir()
    data.write_shd_h5(folder / "shd_train.h5", *_events(3), KEYS)
    with pytest.raises(data.SHDMissingError) as err:
        data.load_dataset(str(folder), progress=False)
    message = str(err.value)
    assert str(folder) in message and "shd_test.h5" in message and "\n" not in message
    assert _listing(folder) == ["shd_train.h5"]


def test_load_dataset_shd_says_where(tmp_path):
    with pytest.raises(data.SHDMissingError) as err:
        data.load_dataset("shd", progress=False)
    assert str(tmp_path / "data" / "shd") in str(err.value)
    assert "shd_train.h5" in str(err.value) and "shd_test.h5" in str(err.value)


def test_load_dataset_unknown_name():
    with pytest.raises(ValueError) as err:
        data.load_dataset("mnist", progress=False)
    message = str(err.value)
    assert "'mnist'" in message and "'synth'" in message and "'shd'" in message
    with pytest.raises(ValueError, match="allowed pools"):
        data.load_dataset("synth", pool=3, progress=False)


# --- binning ------------------------------------------------------------------------------------


def test_bin_by_absolute_time():
    frame = data.bin_events(np.array([0.7]), np.array([3]), n_bins=100, duration_s=1.4)
    assert frame.shape == (100, 700) and frame.dtype == np.uint8
    assert frame[50, 3] == 1 and frame.sum() == 1
    # Other spikes change the sample's span but not where the 0.7 s spike lands.
    wide = data.bin_events(np.array([0.05, 0.7, 1.35]), np.array([0, 3, 9]), 100, 1.4)
    assert wide[50, 3] == 1 and wide[3, 0] == 1 and wide[96, 9] == 1
    # Spikes at or after the duration are dropped; float16 times land where their value says.
    late = data.bin_events(np.array([1.4, 2.0]), np.array([1, 1]), 100, 1.4)
    assert late.sum() == 0
    t16 = np.float16(0.7).astype(np.float64)
    assert data.bin_events(np.array([t16]), np.array([0]), 100, 1.4)[50, 0] == 1


def test_pooling_and_clipping():
    units = np.array([0, 4, 5, 699])
    frame = data.bin_events(np.full(4, 0.01), units, n_bins=10, duration_s=1.0, pool=5)
    assert frame.shape == (10, 140)
    np.testing.assert_array_equal(frame[0, [0, 1, 139]], [2, 1, 1])
    many = data.bin_events(np.zeros(300), np.zeros(300, int), n_bins=2, duration_s=1.0)
    assert many[0, 0] == 255
    binary = data.bin_events(np.zeros(300), np.zeros(300, int), 2, 1.0, binary=True)
    assert binary[0, 0] == 1
    with pytest.raises(ValueError, match="allowed pools"):
        data.bin_events(np.zeros(1), np.zeros(1, int), pool=3)
    with pytest.raises(ValueError, match="700"):
        data.bin_events(np.zeros(1), np.array([700]))


def test_bin_samples_matches_bin_events(monkeypatch):
    times, units, _, _ = _events(30, n_spikes=500)
    # Small chunks so that the chunked path is exercised.
    monkeypatch.setattr(data._loading.binning, "_CELLS_PER_CHUNK", 3 * 20 * 140)
    batch = data.bin_samples(times, units, 20, 1.4, 700, 5)
    single = np.stack([data.bin_events(t, u, 20, 1.4, 700, 5) for t, u in zip(times, units)])
    np.testing.assert_array_equal(batch, single)
    assert batch.sum() == sum(t.size for t in times)


# --- speaker split, synth, load_dataset and its cache -------------------------------------------


def test_split_by_speaker():
    speakers = np.repeat(np.arange(10), 7)
    train, val = data.split_by_speaker(speakers, 0.2, seed=3)
    assert not set(speakers[train]) & set(speakers[val])
    assert len(set(speakers[val])) == 2 and len(train) + len(val) == speakers.size
    again = data.split_by_speaker(speakers, 0.2, seed=3)
    np.testing.assert_array_equal(val, again[1])
    _, val_one = data.split_by_speaker(speakers, 1, seed=0)
    assert len(set(speakers[val_one])) == 1
    assert len(data.split_by_speaker(speakers, 0.0, seed=0)[1]) == 0
    with pytest.raises(ValueError, match="val_speakers"):
        data.split_by_speaker(speakers, 10, seed=0)


def _read_all(path):
    with h5py.File(path, "r") as f:
        return (
            [t for t in f["spikes/times"][()]],
            [u for u in f["spikes/units"][()]],
            f["labels"][()],
            f["extra/speaker"][()],
        )


def test_synth_deterministic_and_speakers_unseen(tmp_path):
    sizes = dict(n_per_class_train=3, n_per_class_test=2)
    a_train, a_test = data.make_synth_shd(tmp_path / "a", seed=5, **sizes)
    b_train, _ = data.make_synth_shd(tmp_path / "b", seed=5, **sizes)
    c_train, _ = data.make_synth_shd(tmp_path / "c", seed=6, **sizes)
    a, b, c = _read_all(a_train), _read_all(b_train), _read_all(c_train)
    for x, y in zip(a[:2], b[:2]):
        assert all(np.array_equal(p, q) for p, q in zip(x, y))
    np.testing.assert_array_equal(a[2], b[2])
    assert not all(np.array_equal(p, q) for p, q in zip(a[0], c[0]))
    test = _read_all(a_test)
    assert len(a[2]) == 60 and len(test[2]) == 40
    assert not set(a[3]) & set(test[3])
    assert all(t.size > 0 and t.max() < 1.4 for t in a[0])
    data.check_shd_file(a_test)


def test_load_dataset_from_folder_and_cache(tmp_path, monkeypatch):
    folder = tmp_path / "user"
    data.make_synth_shd(folder, n_per_class_train=4, n_per_class_test=2, seed=1)
    before = _listing(folder)
    first = data.load_dataset(str(folder), n_bins=50, pool=5, val_speakers=2, progress=False)
    assert first.train.x.shape[1:] == (50, 140) and first.train.x.dtype == np.uint8
    assert first.train.y.dtype == np.int32 and first.train.speakers.dtype == np.int32
    assert (first.n_classes, first.n_channels, first.n_bins) == (20, 140, 50)
    assert len(first.train) + len(first.val) == 80 and len(first.test) == 40
    assert len(set(first.val.speakers)) == 2
    assert not set(first.train.speakers) & set(first.val.speakers)
    assert not set(first.test.speakers) & set(first.train.speakers)
    assert first.source.startswith("shd:") and first.class_names[1] == "one"
    assert _listing(folder) == before
    assert list((tmp_path / "cache" / "binned").glob("*.npz"))

    monkeypatch.setattr(_loader, "read_split_header", lambda *a, **k: pytest.fail("cache missed"))
    second = data.load_dataset(str(folder), n_bins=50, pool=5, val_speakers=2, progress=False)
    for name in ("train", "val", "test"):
        for field in ("x", "y", "speakers"):
            np.testing.assert_array_equal(
                getattr(getattr(first, name), field), getattr(getattr(second, name), field)
            )
    # Different binning is a different cache entry.
    with pytest.raises(pytest.fail.Exception, match="cache missed"):
        data.load_dataset(str(folder), n_bins=60, progress=False)


@pytest.mark.parametrize("kind", ["zip", "gz", "zip in SHD/"])
def test_downloads_load_as_they_are(tmp_path, kind):
    """A folder holding only SHD's downloads (``.h5.zip`` or the original ``.h5.gz``) loads the
    same data as the unpacked files; they are unpacked into the cache, once, and the user's
    folder is left as it was."""
    import gzip
    import zipfile

    plain = tmp_path / "plain"
    data.make_synth_shd(plain, n_per_class_train=3, n_per_class_test=1, seed=3)
    folder = tmp_path / "downloads"
    inner = folder / "SHD" if kind == "zip in SHD/" else folder
    inner.mkdir(parents=True)
    for name in ("shd_train.h5", "shd_test.h5"):
        if kind == "gz":
            (inner / f"{name}.gz").write_bytes(gzip.compress((plain / name).read_bytes()))
        else:
            with zipfile.ZipFile(inner / f"{name}.zip", "w", zipfile.ZIP_DEFLATED) as z:
                z.write(plain / name, arcname=name)
    before = _listing(folder)
    want = data.load_dataset(str(plain), n_bins=20, val_speakers=1, progress=False)
    got = data.load_dataset(str(folder), n_bins=20, val_speakers=1, progress=False)
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(want, split).x, getattr(got, split).x)
        np.testing.assert_array_equal(getattr(want, split).y, getattr(got, split).y)
    assert got.class_names == want.class_names and _listing(folder) == before
    unpacked = sorted(p.name for p in (tmp_path / "cache" / "unpacked").rglob("*.h5"))
    assert unpacked == ["shd_test.h5", "shd_train.h5"]


def test_a_bad_download_is_one_line_and_leaves_nothing(tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "shd_train.h5.zip").write_bytes(b"<html>rate limited</html>")
    data.make_synth_shd(tmp_path / "plain", n_per_class_train=1, n_per_class_test=1, seed=3)
    (folder / "shd_test.h5").write_bytes((tmp_path / "plain" / "shd_test.h5").read_bytes())
    with pytest.raises(data.SHDFormatError) as err:
        data.load_dataset(str(folder), progress=False)
    message = str(err.value)
    assert "shd_train.h5.zip: not a readable zip archive of shd_train.h5" in message
    assert "\n" not in message
    assert list((tmp_path / "cache" / "unpacked").rglob("*.h5")) == []


def test_load_dataset_synth_default(tmp_path):
    dataset = data.load_dataset("synth", progress=False)
    assert len(dataset.train) + len(dataset.val) == 2000 and len(dataset.test) == 500
    assert dataset.train.x.shape[1:] == (100, 140)
    assert dataset.source.startswith("synth:") and str(tmp_path / "cache") in dataset.source
    assert not set(dataset.train.speakers) & set(dataset.val.speakers)
    assert dataset.train.x.sum() > 0 and dataset.n_classes == 20


def test_speech_name_resolves_to_the_cached_speech_set(tmp_path, monkeypatch):
    """``load_dataset("speech")``, and ``load_dataset()``, read the folder the speech generator
    returns (stubbed here with a tiny SHD-layout folder: making the real set takes minutes)."""
    import numpy as np

    from snnplast.data import load_dataset, write_shd_h5
    from snnplast.data._speech import speech_shd as _speech_shd

    monkeypatch.setenv("SNNPLAST_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "speech"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, speakers in (("shd_train.h5", [0, 1, 2, 3]), ("shd_test.h5", [9])):
        n = 8 * len(speakers)
        times = [np.sort(rng.uniform(0, 1, 30)) for _ in range(n)]
        units = [rng.integers(0, 700, 30) for _ in range(n)]
        labels = np.arange(n) % 2
        spk = np.repeat(speakers, 8)
        write_shd_h5(folder / name, times, units, labels, spk, ["zero", "one"])
    calls = []
    monkeypatch.setattr(_speech_shd, "ensure_speech_shd",
                        lambda cache, progress=True: calls.append(cache) or folder)
    data = load_dataset("speech", progress=False)
    assert calls and data.source.startswith("speech")
    assert data.n_classes == 2 and len(data.test.y) == 8
    # It is also the default data set.
    default = load_dataset(progress=False)
    assert len(calls) == 2 and default.source == data.source
