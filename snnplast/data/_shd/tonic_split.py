"""Reading one split of SHD or SSC through `tonic.datasets.SHD` / `.SSC`, from local files only.

tonic looks for ``<root>/SHD/shd_train.h5`` (``<root>/SSC/ssc_valid.h5`` for SSC) and counts it as
present only when the archive name ``shd_train.h5.zip`` also exists beside it; otherwise it
downloads. A user's folder usually holds just the ``.h5`` files, so a tonic-shaped folder is
staged in the cache (a symlink to the user's file plus an empty placeholder archive) instead of
writing into the user's folder.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from .._cache import cache_root
from .archive import find_archive, unpacked
from .family import SHD, Family, family_in, family_of_file
from .file import (
    _H5_ERRORS,
    SHD_CHANNELS,
    SHDFormatError,
    SHDMissingError,
    _one_line,
    check_shd_file,
    file_channels,
    missing_message,
    read_shd_events,
)


def split_filename(train: bool) -> str:
    """``"shd_train.h5"`` or ``"shd_test.h5"``."""
    return "shd_train.h5" if train else "shd_test.h5"


def find_split_file(
    directory: str | os.PathLike,
    train: bool | str,
    cache_dir: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    family: Family | None = None,
) -> Path:
    """The split's file in `directory` or its tonic subfolder (``SHD/``, ``SSC/``).

    Where only the downloaded archive is there (``shd_train.h5.zip`` or ``.gz``), it is unpacked
    once into the cache (:func:`~.archive.unpacked`) and that file is returned.

    **Arguments:**

    - `directory`: the folder to look in.
    - `train`: the training split's file if True, the test split's if False, or a split's name
      (``"train"``, ``"valid"``, ``"test"``).
    - `cache_dir`: where an archive is unpacked (default ``$SNNPLAST_CACHE`` or
      ``~/.cache/snnplast``).
    - `progress`: show a progress bar while unpacking.
    - `family`: the set whose file is wanted; None takes the one whose files `directory` holds
      (SHD if none).

    **Raises:** :class:`SHDMissingError` naming where to put the file when neither holds it.
    """
    directory = Path(directory).expanduser()
    family = family or family_in(directory) or SHD
    name = family.filename(family.split_name(train))
    folders = family.folders(directory)
    for folder in folders:
        if (folder / name).exists():
            return folder / name
    archive = find_archive(folders, name)
    if archive is not None:
        return unpacked(archive, name, cache_dir, progress=progress)
    raise SHDMissingError(missing_message(directory / name))


@functools.cache
def _shd_class(name: str = "SHD"):
    """`tonic.datasets.SHD` (or ``.SSC``) with downloading turned into a clear local error.

    Imported on first use: tonic pulls in librosa and numba, which take a second or two.
    """
    import tonic.datasets

    def download(self) -> None:
        # Reaching this means tonic judged the layout incomplete; the files must come from the user.
        raise SHDMissingError(
            f"tonic found no {self.data_filename} (with {self.filename} beside it) in "
            f"{self.location_on_system}; snnplast never downloads: pass a folder holding "
            f"{self.data_filename}"
        )

    # tonic names the data folder after the class (``<root>/SHD``), so the subclass keeps the name.
    base = getattr(tonic.datasets, name)
    return type(name, (base,), {"download": download, "__module__": __name__})


def _already_tonic_layout(path: Path) -> bool:
    return path.parent.name == family_of_file(path).tonic_name and Path(f"{path}.zip").is_file()


def link_or_copy(src: Path, dst: Path) -> None:
    """Make `dst` a link to `src` (a copy where links are not allowed), unless it is one."""
    # Replace atomically so a concurrent reader never sees a missing or partial file.
    if dst.is_symlink() and os.path.realpath(dst) == str(src):
        return
    if not dst.is_symlink() and dst.is_file():
        have, want = dst.stat(), src.stat()
        if (have.st_size, have.st_mtime_ns) == (want.st_size, want.st_mtime_ns):
            return
    tmp = Path(tempfile.mkdtemp(prefix=".stage.", dir=dst.parent)) / dst.name
    try:
        try:
            os.symlink(src, tmp)
        except OSError:
            shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def tonic_root(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """A folder `root` from which ``tonic.datasets.SHD(save_to=root)`` reads `path`, no download.

    A file already in tonic's layout (``<root>/SHD/<name>`` with ``<name>.zip`` beside it) is used
    in place; otherwise a layout is staged under ``<cache>/tonic/`` with a symlink (or, where links
    are not allowed, a copy) of the file and an empty placeholder archive. SSC's files
    (``ssc_valid.h5``, ...) go to ``SSC/``, where ``tonic.datasets.SSC`` looks.

    **Arguments:**

    - `path`: an ``shd_train.h5`` / ``shd_test.h5`` file (or one of SSC's three).
    - `cache_dir`: cache root (default ``$SNNPLAST_CACHE`` or ``~/.cache/snnplast``).

    **Returns:** the root folder to hand to tonic.
    """
    # Keep the name given (a user's shd_test.h5 may be a link to a file with another name): tonic
    # opens the file by its split's name.
    path = Path(path).expanduser().absolute()
    if _already_tonic_layout(path):
        return path.parent.parent
    digest = hashlib.sha256(str(path.parent.resolve()).encode()).hexdigest()[:16]
    root = cache_root(cache_dir) / "tonic" / digest
    folder = root / family_of_file(path).tonic_name
    folder.mkdir(parents=True, exist_ok=True)
    link_or_copy(path.resolve(), folder / path.name)
    placeholder = folder / f"{path.name}.zip"
    if not placeholder.exists():
        placeholder.touch()
    return root


@dataclass(frozen=True, eq=False)
class EventSplit:
    """One split of an SHD-format file, staged into memory.

    **Fields:**

    - `times`: ``N`` float32 arrays of spike times in seconds (float32 holds the stored float16
      values exactly, at half the memory of float64).
    - `units`: ``N`` int32 arrays of channels.
    - `labels`: ``[N]`` int32 class indices.
    - `speakers`: ``[N]`` int32 speaker ids.
    - `class_names`: one name per class.
    - `path`: the file the events came from.
    - `n_channels`: the file's channel count (700 for SHD).
    """

    times: list[np.ndarray]
    units: list[np.ndarray]
    labels: np.ndarray
    speakers: np.ndarray
    class_names: tuple[str, ...]
    path: Path
    n_channels: int = SHD_CHANNELS


def _decode(name) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


def _read_via_tonic(dataset, n: int, progress: bool, desc: str):
    times: list[np.ndarray] = []
    units: list[np.ndarray] = []
    for i in tqdm(range(n), desc=desc, unit="sample", disable=not progress):
        events, _ = dataset[i]
        times.append((events["t"] * 1e-6).astype(np.float32))
        units.append(events["x"].astype(np.int32))
    return times, units


@dataclass(frozen=True, eq=False)
class SplitHeader:
    """What one split's file says besides its spikes (read through tonic, no spikes read).

    **Fields:** `labels` (``[N]`` int32), `speakers` (``[N]`` int32), `class_names`, `path`
    (the file), `n_channels`, as in :class:`EventSplit`.
    """

    labels: np.ndarray
    speakers: np.ndarray
    class_names: tuple[str, ...]
    path: Path
    n_channels: int


def _tonic_dataset(file: Path, split: str, cache_dir):
    """tonic's dataset of `file`, or None for a file tonic has no name for (``shd_valid.h5``)."""
    family = family_of_file(file)
    arguments = family.tonic_arguments(split)
    if arguments is None:
        return None
    root = tonic_root(file, cache_dir)
    return _shd_class(family.tonic_name)(save_to=str(root), **arguments)


def _header(file: Path, dataset) -> SplitHeader:
    with h5py.File(file, "r") as f:
        labels = f["labels"][()].astype(np.int32)
        n_channels = file_channels(f, file)
        # What tonic's SHD returns as `speaker`; its SSC has no public accessor for it.
        speakers = f["extra/speaker"][()].astype(np.int32)
        keys = f["extra/keys"][()] if dataset is None else dataset.classes
    return SplitHeader(
        labels=labels,
        speakers=speakers,
        class_names=tuple(_decode(k) for k in keys),
        path=file,
        n_channels=n_channels,
    )


def _split_file(root, train, cache_dir, progress) -> tuple[Path, str]:
    directory = Path(root).expanduser()
    file = check_shd_file(find_split_file(directory, train, cache_dir, progress=progress))
    return file, family_of_file(file).split_name(train)


def read_split_header(
    root: str | os.PathLike,
    train: bool | str,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> SplitHeader:
    """One split's labels, speakers, class names and channel count, through tonic, without its
    spikes (for reading those in chunks, :func:`~.file.iter_shd_events`).

    **Arguments:** as :func:`load_shd_split`.

    **Returns:** a :class:`SplitHeader`.

    **Raises:** :class:`SHDMissingError` / :class:`SHDFormatError` (one line, naming the file).
    """
    file, split = _split_file(root, train, cache_dir, progress)
    try:
        return _header(file, _tonic_dataset(file, split, cache_dir))
    except (SHDFormatError, SHDMissingError):
        raise
    except _H5_ERRORS as e:
        raise SHDFormatError(f"{file}: damaged SHD file ({_one_line(e)}); replace it") from e


def load_shd_split(
    root: str | os.PathLike,
    train: bool | str,
    *,
    cache_dir: str | os.PathLike | None = None,
    via_tonic: bool = False,
    progress: bool = True,
) -> EventSplit:
    """Load one split of SHD-format data through `tonic.datasets.SHD` (SSC's through
    `tonic.datasets.SSC`), never downloading.

    tonic opens the file, checks its layout and supplies the class names and speakers. Its
    ``__getitem__`` reopens the file for every sample, so by default the events are then read in
    bulk from the same file with h5py (seconds for all 8156 training samples, with identical
    values in seconds); ``via_tonic=True`` reads every sample through tonic instead (its times are
    whole microseconds).

    **Arguments:**

    - `root`: a folder holding ``shd_train.h5`` / ``shd_test.h5`` directly or in ``root/SHD``
      (or SSC's ``ssc_train.h5`` / ``ssc_valid.h5`` / ``ssc_test.h5``, directly or in
      ``root/SSC``).
    - `train`: the training split if True, the test split if False, or a split's name
      (``"valid"`` is SSC's validation file).
    - `cache_dir`: where a tonic-shaped layout is staged if `root` lacks one.
    - `via_tonic`: read each sample through tonic's ``__getitem__`` (slow; for checking).
    - `progress`: show a progress bar.

    **Returns:** an :class:`EventSplit`.

    **Raises:** :class:`SHDMissingError` / :class:`SHDFormatError` (one line, naming the file).
    """
    file, split = _split_file(root, train, cache_dir, progress)
    desc = f"reading {file.name}"
    try:
        dataset = _tonic_dataset(file, split, cache_dir)
        # Every sample is checked here (lengths, times, channels), whichever path reads them;
        # from the user's own file (tonic's staged one links to it), so errors name that.
        times, units, labels, n_channels = read_shd_events(file, progress, desc)
        if via_tonic and dataset is not None:
            times, units = _read_via_tonic(dataset, len(labels), progress, desc)
        header = _header(file, dataset)
    except (SHDFormatError, SHDMissingError):
        raise
    except _H5_ERRORS as e:
        # tonic reads the file its own way; a damage it trips on is still named by file.
        raise SHDFormatError(f"{file}: damaged SHD file ({_one_line(e)}); replace it") from e
    return EventSplit(
        times=times,
        units=units,
        labels=labels,
        speakers=header.speakers,
        class_names=header.class_names,
        path=file,
        n_channels=n_channels,
    )
