"""A folder of recordings as a binned split, converted once through the cochlea and cached.

This is how a trained model meets a user's own recordings: the folder is converted with
:func:`convert_audio` (every file resampled to the cochlea's working rate, whatever rate it was
stored at) into ``<cache>/recordings/<key>/shd_test.h5``, keyed by every file's name, size and
modification time, the labels' content, the seed and the cochlea; later calls reuse it. A
folder that names its own test split (Speech Commands' ``testing_list.txt``) gives only the
recordings listed there, the ones training on the folder holds out.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from ..._errors import ValidationError
from .._audio.formats import is_audio
from .._cache import cache_root
from .._cochlea.cochlea import Cochlea
from .._loading.dataset import Split
from .._loading.loader import binned_split
from .._loading.time_axis import check_time_axis
from .._shd.family import FAMILIES, family_in
from .cached import converted
from .convert import find_recordings, read_names, read_skipped
from .layouts import NESTED, Recording
from .split import SPLIT_LISTS, listed_splits


def is_recordings_folder(path: str | os.PathLike) -> bool:
    """True when `path` is a folder of audio files (directly, or one folder per label) and not
    a folder of SHD's or SSC's files."""
    if not str(path).strip():
        return False  # not the working folder: an empty name is refused where data is read
    path = Path(path).expanduser()
    if not path.is_dir() or family_in(path) is not None:
        return False
    if any((path / family.tonic_name).is_dir() for family in FAMILIES.values()):
        return False
    # Deeper too: such a folder is still recordings, read by a CSV or refused with a message
    # that says how to lay them out, not taken for a folder missing SHD's files.
    found = itertools.chain(path.glob("*"), path.glob("*/*"), *(path.glob(p) for p in NESTED))
    return any(is_audio(p) and not p.name.startswith(".") for p in found)


def _to_score(in_dir: Path, labels, test_list: bool) -> tuple[list[Recording], str]:
    """The recordings of `in_dir` to score, and which they are in words: those its
    ``testing_list.txt`` names (when `test_list` and the folder has one), else all."""
    recordings = find_recordings(in_dir, labels)
    listing = SPLIT_LISTS["shd_test.h5"]
    splits = listed_splits(in_dir, recordings) if test_list else None
    if splits is None:
        return recordings, f"all {len(recordings)} recordings of {in_dir}"
    index = splits["shd_test.h5"]
    if not index.size:
        raise ValidationError(
            f"{in_dir / listing}: names none of the folder's {len(recordings)} recordings (lines "
            "like yes/0a7c2a8d_nohash_0.wav); fix it, or remove it to score every recording"
        )
    chosen = [recordings[i] for i in index]
    return chosen, f"the {len(chosen)} recordings {listing} names, of {len(recordings)} in {in_dir}"


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
    test_list: bool = True,
) -> tuple[Split, tuple[str, ...], tuple[str, ...]]:
    """The labelled recordings of `in_dir`, converted to spikes (once) and binned; where the
    folder names its own test split (Speech Commands' ``testing_list.txt``), only those.

    **Arguments:**

    - `in_dir`: a folder of audio files (WAV, FLAC, ...) at any sample rate, labelled by their names or
      by `labels` (see :func:`convert_audio`).
    - `labels`: a CSV ``file,label[,speaker]``; None reads labels from the file names.
    - `n_bins`, `duration`, `pool`, `time_axis`: binning, as :func:`load_dataset`.
    - `seed`: the cochlea's randomness.
    - `model`: the cochlea (default: Lauscher's at the working rate).
    - `cache_dir`: the cache root (default ``$SNNPLAST_CACHE`` or ``~/.cache/snnplast``).
    - `progress`: show progress bars.
    - `test_list`: take only the recordings ``in_dir/testing_list.txt`` names, when it is there
      (False: every recording).

    **Returns:** ``(split, class_names, speaker_names)``: `speaker_names` gives the name of each
    speaker id (``split.speakers`` indexes it). Recordings that cannot be used (empty,
    undecodable, silent) are left out with a warning (:func:`convert_audio`).
    """
    split, classes, speakers, _ = scored_recordings(
        in_dir, labels=labels, n_bins=n_bins, duration=duration, pool=pool, seed=seed,
        model=model, cache_dir=cache_dir, progress=progress, time_axis=time_axis,
        test_list=test_list,
    )  # fmt: skip
    return split, classes, speakers


def scored_recordings(
    in_dir, *, labels, n_bins, pool, cache_dir, progress, time_axis, duration=1.4, seed=0,
    model=None, test_list=True,
) -> tuple[Split, tuple[str, ...], tuple[str, ...], str]:  # fmt: skip
    """:func:`load_recordings`, and which recordings the split holds, in words (how many, from
    which list, how many were left out)."""
    check_time_axis(time_axis)
    model = Cochlea() if model is None else model
    in_dir = Path(in_dir).expanduser()
    recordings, scored = _to_score(in_dir, labels, test_list)
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
    skipped = read_skipped(target)
    if skipped:
        more = " ..." if len(skipped) > 3 else ""
        scored += f" ({len(skipped)} left out: {'; '.join(skipped[:3])}{more})"
    return split, classes, tuple(speakers or ()), scored
