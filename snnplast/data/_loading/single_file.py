"""One SHD-layout file given as the data (``shd_test.h5`` kept anywhere, SSC's, or a file that
``convert-audio`` wrote), staged in the cache as the folder the loader reads.

To score a model, the file is the test split: a link to it, named ``shd_test.h5``, in
``<cache>/files/<hash of its path>/`` (the class names come from the file's ``extra/keys``, so
SSC's 35 words read as well as SHD's 20). To train, it has no test split of its own: a fifth of
its speakers (at least one) is held out as one, as for a folder of recordings, written into
``<cache>/files/<key>/split-0.2/`` keyed by the file's path, size and time; validation speakers
then come from the rest. A file that is one of a set whose other files lie beside it
(``shd_train.h5`` with ``shd_test.h5``) is refused for training: the folder is the data set,
and its own test file is what results are compared on. A downloaded archive of one such file
(``shd_test.h5.zip``, ``.gz``) is read as the file it holds, for either use: unpacked once into
the cache (:func:`~.._shd.archive.unpacked`), never beside it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np

from ..._errors import ValidationError
from .._audio.formats import is_audio
from .._cache import cache_key, file_fingerprint
from .._shd.archive import ARCHIVE_SUFFIXES, unpacked
from .._shd.family import FAMILIES, present_files
from .._shd.file import check_shd_file
from .._shd.tonic_split import link_or_copy


def _archive_suffix(file: Path) -> str:
    """``".zip"`` / ``".gz"`` for a downloaded archive (``shd_test.h5.zip``), else ``""``."""
    suffixes = [s.lower() for s in file.suffixes[-2:]]
    if len(suffixes) == 2 and suffixes[0] == ".h5" and suffixes[1] in ARCHIVE_SUFFIXES:
        return suffixes[1]
    return ""


def check_single_file(file: Path) -> None:
    """A one-line error for a file that cannot be a data set: a recording, or not HDF5."""
    if is_audio(file):
        raise ValidationError(
            f"{file}: is one recording; --data takes a folder of recordings (labelled by their "
            "names, their folders or --labels), or an SHD-layout .h5 file"
        )
    if not _archive_suffix(file):
        check_shd_file(file)


def test_folder(file: Path, cache: Path, progress: bool = False) -> Path:
    """A cache folder whose ``shd_test.h5`` is a link to `file` (to the file its archive holds,
    unpacked: an archive that cannot be read is named as the user gave it)."""
    check_single_file(file)
    file = file.absolute()
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:16]
    folder = cache / "files" / digest
    folder.mkdir(parents=True, exist_ok=True)
    link_or_copy(readable_file(file, cache, progress).resolve(), folder / "shd_test.h5")
    return folder


def _whole_set(file: Path) -> str | None:
    """The folder's name, when `file` is one of the files of a set that lies complete there."""
    for family in FAMILIES.values():
        name = file.name.lower().removesuffix(_archive_suffix(file))
        if name in family.filenames() and len(present_files(file.parent, family)) == len(
            family.splits
        ):
            return family.title
    return None


def speakers_of(file: Path) -> np.ndarray:
    """The speaker ids of `file`'s samples (``extra/speaker``), read without its spikes."""
    with h5py.File(file, "r") as f:
        return f["extra/speaker"][()]


def readable_file(file: Path, cache: Path, progress: bool = False) -> Path:
    """`file` itself, or the file its archive holds, unpacked once into `cache` and checked."""
    suffix = _archive_suffix(file)
    if not suffix:
        return file
    return check_shd_file(unpacked(file, file.name[: -len(suffix)], cache, progress=progress))


def check_trainable(file: Path, cache: Path, progress: bool = False) -> Path:
    """A one-line error unless `file` alone can be trained on: an SHD-layout file (or its
    ``.zip``/``.gz`` download) by two speakers or more, not part of a complete set in its
    folder.

    **Returns:** the SHD-layout file to read: `file`, or the one its archive holds, unpacked.
    """
    check_single_file(file)
    whole = _whole_set(file)
    if whole is not None:
        raise ValidationError(
            f"{file}: is one file of the {whole} set beside it; to train on it and test on its "
            f"own test file pass the folder, --data {file.parent}"
        )
    plain = readable_file(file, cache, progress)
    speakers = np.unique(speakers_of(plain))
    if not len(speakers):
        raise ValidationError(f"{file}: holds no samples")
    if len(speakers) < 2:
        raise ValidationError(
            f"{file}: every sample is by one speaker ({int(speakers[0])}); trained on alone, a "
            "file's test split is a fifth of its speakers, so it needs two or more (or pass a "
            "folder holding shd_train.h5 and shd_test.h5)"
        )
    return plain


def train_folder(file: Path, cache: Path, progress: bool) -> Path:
    """A cache folder holding ``shd_train.h5`` / ``shd_test.h5`` made from `file` (or the file
    its archive holds), a fifth of its speakers held out as the test split (made on first use,
    said when `progress`)."""
    from .._recordings.split import held_out_folder

    plain = check_trainable(file, cache, progress)
    key = cache_key(source=file_fingerprint(file))
    return held_out_folder(plain, cache / "files" / key, file, progress)
