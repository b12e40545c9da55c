"""A folder of recordings as a data set to train on: converted once, whole speakers held out
for the test split.

``load_dataset(folder)`` (and ``snnplast train --data FOLDER``) on a folder of labelled
recordings converts it through the cochlea (the same cached conversion ``snnplast evaluate``
uses), then writes ``shd_train.h5`` / ``shd_test.h5`` beside it in the cache, the test file
holding every recording of a fixed share of the speakers (:data:`TEST_SPEAKERS`, drawn with a
fixed seed, so the test set does not move with the training seed). Validation is then taken
from the training speakers as for any other data set.

A folder that carries its own split, as Speech Commands does (``testing_list.txt`` and
``validation_list.txt`` beside the label folders, each line a recording's path such as
``yes/0a7c2a8d_nohash_0.wav``; its authors chose them so that no speaker is in two), is split by
those lists instead: the listed recordings become ``shd_test.h5`` and ``shd_valid.h5``, the rest
``shd_train.h5``, so results compare with everyone else's on that corpus.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import h5py
import numpy as np

from ..._atomic import atomic_write
from ..._errors import ValidationError
from .._cache import cache_key
from .._cochlea.cochlea import Cochlea
from .._loading.speakers import split_by_speaker
from .._shd.file import CHANNELS_ATTR, SHD_CHANNELS, write_shd_h5
from .cached import converted
from .convert import SPEAKER_NAMES, converted_recordings, find_recordings, read_names
from .layouts import Recording

# The share of speakers whose recordings form the test split (at least one).
TEST_SPEAKERS = 0.2
# Which speakers they are does not depend on the training seed.
_TEST_SEED = 0


def hold_out_speakers(
    source: str | os.PathLike,
    out: str | os.PathLike,
    test_speakers: float = TEST_SPEAKERS,
    seed: int = _TEST_SEED,
) -> list[str]:
    """Write ``out/shd_train.h5`` and ``out/shd_test.h5`` from one SHD-layout file, the test
    file holding all recordings of ``round(test_speakers * n)`` speakers (at least one, at most
    all but one).

    **Arguments:**

    - `source`: a file written by :func:`convert_audio` (or any SHD-layout file).
    - `out`: an existing folder; both files are written atomically.
    - `test_speakers`: the share of speakers held out, in (0, 1).
    - `seed`: which speakers.

    **Returns:** the names of the test speakers (from ``extra/speaker_names`` where the file has
    them, else their ids), sorted.

    **Raises:** `ValueError` (one line) when the file has fewer than two speakers.
    """
    if isinstance(test_speakers, bool) or not 0 < test_speakers < 1:
        raise ValidationError(f"test_speakers must be a share in (0, 1), got {test_speakers!r}")
    source, out = Path(source), Path(out)
    with h5py.File(source, "r") as f:
        speakers = f["extra/speaker"][()]
    _, names = read_names(source)
    unique = np.unique(speakers)
    name = (lambda s: names[s]) if names else str
    if not len(unique):
        raise ValidationError(f"{source}: holds no recordings")
    if len(unique) < 2:
        raise ValidationError(
            f"{source}: every recording is by one speaker ({name(unique[0])!r}); a test split of "
            "unheard voices needs at least two (name the files so that they carry speakers)"
        )
    # The same draw as validation speakers are held out by (at least one, all but one at most).
    train, test = split_by_speaker(speakers, float(test_speakers), seed)
    _write_splits(source, out, {"shd_train.h5": train, "shd_test.h5": test})
    return sorted(name(s) for s in np.unique(speakers[test]))


def _write_splits(source: Path, out: Path, splits: dict[str, np.ndarray]) -> None:
    """Write each ``{file: indices}`` of `splits` into `out`, the samples `indices` of `source`."""
    with h5py.File(source, "r") as f:
        times = list(f["spikes/times"][()])
        units = list(f["spikes/units"][()])
        labels = f["labels"][()]
        speakers = f["extra/speaker"][()]
        n_channels = int(f.attrs.get(CHANNELS_ATTR, SHD_CHANNELS))
    keys, names = read_names(source)
    for file, index in splits.items():

        def write(tmp: Path, index=index) -> None:
            write_shd_h5(tmp, [times[i] for i in index], [units[i] for i in index],
                         labels[index], speakers[index], keys, n_channels=n_channels)  # fmt: skip
            if names:
                with h5py.File(tmp, "a") as f:
                    f.create_dataset(SPEAKER_NAMES, data=np.array([n.encode() for n in names]))

        atomic_write(out / file, write)


# Speech Commands' own split: files listing recordings by their path within the folder.
SPLIT_LISTS = {"shd_test.h5": "testing_list.txt", "shd_valid.h5": "validation_list.txt"}


def listed_splits(in_dir: Path, recordings: list[Recording]) -> dict[str, np.ndarray] | None:
    """Indices of `recordings` per split file by `in_dir`'s own lists (``testing_list.txt``,
    ``validation_list.txt``; the rest is ``shd_train.h5``), or None without a test list.
    Recordings a list names that the folder lacks (a subset of the corpus) are no error."""
    if not (in_dir / SPLIT_LISTS["shd_test.h5"]).is_file():
        return None
    index = {rec.name: i for i, rec in enumerate(recordings)}
    splits, taken = {}, set()
    for file, listing in SPLIT_LISTS.items():
        path = in_dir / listing
        lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
        chosen = sorted({index[n] for n in (ln.strip() for ln in lines) if n in index} - taken)
        splits[file] = np.array(chosen, dtype=np.int64)
        taken.update(chosen)
    splits["shd_train.h5"] = np.array(sorted(set(range(len(recordings))) - taken), np.int64)
    return splits


def _listed(in_dir: Path, recordings: list[Recording]) -> dict[str, np.ndarray] | None:
    """:func:`listed_splits`, checked to leave recordings to train and to test on."""
    splits = listed_splits(in_dir, recordings)
    if splits is None:
        return None
    for file in ("shd_train.h5", "shd_test.h5"):
        if not splits[file].size:
            which = "is left for training" if file == "shd_train.h5" else "is listed for testing"
            raise ValidationError(
                f"{in_dir}: no recording of this folder {which} by its "
                f"{SPLIT_LISTS['shd_test.h5']} and {SPLIT_LISTS['shd_valid.h5']}; fix the lists "
                "(lines like yes/0a7c2a8d_nohash_0.wav) or remove them to hold out speakers"
            )
    if not splits["shd_valid.h5"].size:
        del splits["shd_valid.h5"]  # validation is then taken from the training speakers
    return splits


def check_recordings_folder(
    in_dir: str | os.PathLike, labels: str | os.PathLike | None = None
) -> list[Recording]:
    """The recordings of `in_dir` (:func:`find_recordings`; labelled by the CSV `labels` if
    given), checked to be by two speakers or more, so that whole speakers can be held out;
    cheap, before any conversion.

    **Raises:** `ValueError` (one line) for a bad layout, a single speaker, or split lists
    (Speech Commands' ``testing_list.txt``) that leave no recording to test or train on.
    """
    in_dir = Path(in_dir).expanduser()
    recordings = find_recordings(in_dir, labels)
    speakers = sorted({rec.speaker for rec in recordings})
    if len(speakers) < 2:
        how = (
            f"give each row of {labels} its speaker (columns file,label,speaker)"
            if labels is not None
            else "name the files so that they carry speakers, e.g. 7_jackson_0.wav"
        )
        raise ValidationError(
            f"{in_dir}: every recording is by one speaker ({speakers[0]!r}); a test split of "
            f"unheard voices needs at least two ({how})"
        )
    _listed(in_dir, recordings)  # the folder's own split lists, if any, must leave a split
    return recordings


def recordings_data_folder(
    in_dir: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """A folder holding ``shd_train.h5`` / ``shd_test.h5`` made from the recordings of `in_dir`.

    **Arguments:**

    - `in_dir`: a folder of labelled recordings in a layout :func:`convert_audio` reads; with
      Speech Commands' ``testing_list.txt`` (and ``validation_list.txt``) it is split by them.
    - `labels`: a CSV ``file,label[,speaker]`` labelling them instead (as ``convert_audio``).
    - `cache_dir`: cache root (default ``$SNNPLAST_CACHE`` or ``~/.cache/snnplast``).
    - `progress`: show the conversion's progress.

    **Returns:** ``<cache>/recordings/<key>/split-.../``, made on first use.
    """
    in_dir = Path(in_dir).expanduser()
    recordings = check_recordings_folder(in_dir, labels)
    listed = _listed(in_dir, recordings)  # before minutes of conversion: a bad list fails now
    source = converted(
        in_dir, recordings, labels=labels, seed=0, model=Cochlea(), cache_dir=cache_dir,
        progress=progress,
    )  # fmt: skip
    if listed is not None:
        # In the converted file's numbering: recordings that could not be used are not in it.
        listed = _listed(in_dir, converted_recordings(recordings, source))
        # Keyed by the lists' content: edited lists make another split.
        lists = {f: in_dir / name for f, name in SPLIT_LISTS.items()}
        key = cache_key(**{
            f: hashlib.sha256(p.read_bytes()).hexdigest() for f, p in lists.items() if p.is_file()
        })  # fmt: skip
        folder = source.parent / f"split-lists-{key}"
        if not all((folder / f).is_file() for f in listed):
            folder.mkdir(exist_ok=True)
            _write_splits(source, folder, listed)
            if progress:
                counts = ", ".join(f"{len(i)} in {f}" for f, i in listed.items())
                print(f"{in_dir}: split by its own lists: {counts}")
        return folder
    return held_out_folder(source, source.parent, in_dir, progress)


def held_out_folder(source: Path, cache: Path, name, progress: bool) -> Path:
    """``cache/split-0.2/``, holding :func:`hold_out_speakers` of the SHD-layout file `source`,
    made on first use (saying which speakers were held out, as `name`'s, when `progress`)."""
    folder = cache / f"split-{TEST_SPEAKERS:g}"
    if not all((folder / f).is_file() for f in ("shd_train.h5", "shd_test.h5")):
        folder.mkdir(parents=True, exist_ok=True)
        test = hold_out_speakers(source, folder)
        if progress:
            print(f"{name}: test speakers (never trained on): {', '.join(test)}")
    return folder
