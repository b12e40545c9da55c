"""The HDF5 data sets in SHD's layout that are known by their file names: SHD and SSC.

The Heidelberg lab released two sets in one layout (Cramer et al. 2020): the Spiking Heidelberg
Digits (``shd_train.h5``, ``shd_test.h5``; validation is taken from the training file by
speaker) and the Spiking Speech Commands (``ssc_train.h5``, ``ssc_valid.h5``, ``ssc_test.h5``;
the authors split the speakers themselves, so the validation file is the validation split).
tonic keeps each in a subfolder named after its class (``SHD/``, ``SSC/``). A family says which
files make up a set, where tonic keeps them and how tonic's class is asked for one split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..._errors import ValidationError

TRAIN, VALID, TEST = "train", "valid", "test"


@dataclass(frozen=True)
class Family:
    """One data set in SHD's HDF5 layout, known by its file names.

    **Fields:**

    - `name`: what ``--data`` calls it (``"shd"``), also the files' prefix (``shd_train.h5``)
      and the folder under ``$SNNPLAST_DATA``.
    - `splits`: the files it is released as, by split name; all must be there.
    - `tonic_name`: tonic's class in ``tonic.datasets`` and the subfolder it keeps the files in.
    - `title`: the set's name in messages.
    - `optional`: files used when present (SHD's layout with a validation file beside it, as a
      folder of Speech Commands recordings split by its own lists is written); tonic has no
      name for them, so their class names are read from the file.
    """

    name: str
    splits: tuple[str, ...]
    tonic_name: str
    title: str
    optional: tuple[str, ...] = ()

    @property
    def has_valid(self) -> bool:
        """Whether the authors released a validation file (then it is the validation split)."""
        return VALID in self.splits

    def filename(self, split: str) -> str:
        """``<name>_<split>.h5``."""
        return f"{self.name}_{split}.h5"

    def filenames(self) -> tuple[str, ...]:
        """Every file of the set, in the order of `splits`."""
        return tuple(self.filename(s) for s in self.splits)

    def folders(self, directory: Path) -> list[Path]:
        """Where its files may be: `directory` itself, or tonic's subfolder of it."""
        return [directory, directory / self.tonic_name]

    def split_name(self, split: bool | str) -> str:
        """`split` as a split name: True is the training file, False the test file."""
        if split is True or split is False:
            return TRAIN if split else TEST
        if split not in self.splits + self.optional:
            allowed = ", ".join(self.splits + self.optional)
            raise ValidationError(f"{self.title} has no split {split!r}; allowed: {allowed}")
        return split

    def tonic_arguments(self, split: str) -> dict | None:
        """How tonic's class is asked for `split` (SHD takes ``train=``, SSC ``split=``); None
        for an optional file tonic has no name for."""
        if split not in self.splits:
            return None
        return {"train": split == TRAIN} if not self.has_valid else {"split": split}

    def present_splits(self, directory: str | os.PathLike) -> tuple[str, ...]:
        """`splits`, and those of `optional` whose file `directory` holds."""
        there = present_files(directory, self, self.optional)
        return self.splits + tuple(s for s in self.optional if self.filename(s) in there)


SHD = Family("shd", (TRAIN, TEST), "SHD", "SHD", optional=(VALID,))
SSC = Family("ssc", (TRAIN, VALID, TEST), "SSC", "SSC (Spiking Speech Commands)")
# In the order a folder is tried: a folder holding both sets is read as SHD, as it always was.
FAMILIES: dict[str, Family] = {f.name: f for f in (SHD, SSC)}


def family_of_file(path: str | os.PathLike) -> Family:
    """The family whose file name `path` has (``ssc_valid.h5`` is SSC); SHD for any other name
    (a file written by ``convert-audio`` or a link under another name is read as SHD's)."""
    name = Path(path).name
    for family in FAMILIES.values():
        if name in family.filenames():
            return family
    return SHD


def _present(folder: Path, name: str) -> bool:
    from .archive import ARCHIVE_SUFFIXES

    if (folder / name).exists():
        return True
    return any((folder / f"{name}{s}").is_file() for s in ARCHIVE_SUFFIXES)


def present_files(
    directory: str | os.PathLike, family: Family, splits: tuple[str, ...] | None = None
) -> list[str]:
    """The files of `family` (of `splits`; default its required ones) found in `directory` or
    its tonic subfolder, as ``.h5`` or as a downloaded ``.zip``/``.gz``."""
    directory = Path(directory).expanduser()
    folders = family.folders(directory)
    names = family.filenames() if splits is None else [family.filename(s) for s in splits]
    return [n for n in names if any(_present(f, n) for f in folders)]


def family_in(directory: str | os.PathLike) -> Family | None:
    """The first family with any of its files in `directory` (or its subfolder), else None."""
    for family in FAMILIES.values():
        if present_files(directory, family):
            return family
    return None
