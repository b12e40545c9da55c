"""A folder of recordings as a binned split, converted once through the cochlea and cached.

This is how a trained model meets a user's own recordings: the folder is converted with
:func:`convert_audio` (every file resampled to the cochlea's working rate, whatever rate it was
stored at) into ``<cache>/recordings/<key>/shd_test.h5``, keyed by every file's name, size and
modification time, the labels' content, the seed and the cochlea; later calls reuse it.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from .._audio.formats import is_audio
from .._cache import cache_root
from .._cochlea.cochlea import Cochlea
from .._loading.dataset import Split
from .._loading.loader import binned_split
from .._loading.time_axis import check_time_axis
from .._shd.family import FAMILIES, family_in
from .cached import converted
from .convert import find_recordings, read_names


def is_recordings_folder(path: str | os.PathLike) -> bool:
    """True when `path` is a folder of audio files (directly, or one folder per label) and not
    a folder of SHD's or SSC's files."""
    path = Path(path).expanduser()
    if not path.is_dir() or family_in(path) is not None:
        return False
    if any((path / family.tonic_name).is_dir() for family in FAMILIES.values()):
        return False
    # Two folders deep too: such a folder is still recordings, refused with a message that says
    # how to lay them out, not taken for a folder missing SHD's files.
    found = itertools.chain(path.glob("*"), path.glob("*/*"), path.glob("*/*/*"))
    return any(is_audio(p) and not p.name.startswith(".") for p in found)


def load_recordings(
    in_dir: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    n_bins: int = 100,
    duration: float = 1.4,
    pool: int = 5,
    seed: int = 0,
    model: Cochlea | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    time_axis: str = "absolute",
) -> tuple[Split, tuple[str, ...], tuple[str, ...]]:
    """The labelled recordings of `in_dir`, converted to spikes (once) and binned.

    **Arguments:**

    - `in_dir`: a folder of audio files (WAV, FLAC, ...) at any sample rate, labelled by their names or
      by `labels` (see :func:`convert_audio`).
    - `labels`: a CSV ``file,label[,speaker]``; None reads labels from the file names.
    - `n_bins`, `duration`, `pool`, `time_axis`: binning, as :func:`load_dataset`.
    - `seed`: the cochlea's randomness.
    - `model`: the cochlea (default: Lauscher's at the working rate).
    - `cache_dir`: the cache root (default ``$SNNPLAST_CACHE`` or ``~/.cache/snnplast``).
    - `progress`: show progress bars.

    **Returns:** ``(split, class_names, speaker_names)``: `speaker_names` gives the name of each
    speaker id (``split.speakers`` indexes it).
    """
    check_time_axis(time_axis)
    model = Cochlea() if model is None else model
    in_dir = Path(in_dir).expanduser()
    recordings = find_recordings(in_dir, labels)
    cache = cache_root(cache_dir)
    target = converted(
        in_dir, recordings, labels=labels, seed=seed, model=model, cache_dir=cache,
        progress=progress,
    )  # fmt: skip
    folder = target.parent
    split, classes = binned_split(
        folder, False, n_bins=n_bins, duration=duration, pool=pool, cache_dir=cache,
        progress=progress, time_axis=time_axis,
    )  # fmt: skip
    _, speakers = read_names(target)
    return split, classes, tuple(speakers or ())
