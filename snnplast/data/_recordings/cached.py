"""A folder of recordings converted once into the cache, keyed by what the spikes depend on."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from .._cache import cache_key, cache_root, file_fingerprint
from .._cochlea.cochlea import Cochlea
from .convert import SKIPPED, SkippedRecording, convert_recordings, read_skipped
from .layouts import Recording

# Bump when the conversion changes meaning, so that old cached conversions are not reused.
_RECORDINGS_VERSION = 1


def converted(
    in_dir: Path,
    recordings: list[Recording],
    *,
    labels: str | os.PathLike | None,
    seed: int,
    model: Cochlea,
    cache_dir: str | os.PathLike | None,
    progress: bool,
) -> Path:
    """``<cache>/recordings/<key>/shd_test.h5``: `recordings` (found in `in_dir`) as spikes.

    The key holds every file's name, size and modification time, the labels' content, the seed
    and the cochlea; a later call with the same key reuses the file. Recordings that cannot be
    used are left out (:func:`~.convert.convert_audio`): the conversion warns about each, and a
    later call that reuses the file says in one :class:`~.convert.SkippedRecording` warning how
    many it left out and where they are listed, so that a cached run does not hide them.

    **Returns:** the converted file (SHD layout, with ``extra/speaker_names``).
    """
    key = cache_key(
        version=_RECORDINGS_VERSION,
        files=[file_fingerprint(rec.path) for rec in recordings],
        # The labels' content, not their file's date: a rewritten identical table is the same.
        labels=None if labels is None else Path(labels).read_text(),
        seed=seed,
        cochlea=repr(model),
    )
    target = cache_root(cache_dir) / "recordings" / key / "shd_test.h5"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        convert_recordings(
            recordings, target, seed=seed, exact_length=False, workers=None, model=model,
            progress=progress, where=in_dir,
        )  # fmt: skip
    else:
        _left_out(in_dir, target)
    return target


def _left_out(in_dir: Path, target: Path) -> None:
    """One warning for the recordings a cached conversion of `in_dir` left out, if any."""
    skipped = read_skipped(target)
    if skipped:
        n = len(skipped)
        warnings.warn(
            f"{in_dir}: {n} recording{'s' * (n > 1)} {'were' if n > 1 else 'was'} left out when "
            f"it was converted (empty, undecodable, silent or under 10 ms), listed in {target} "
            f"({SKIPPED}; snnplast.data.read_skipped)",
            SkippedRecording,
            stacklevel=3,
        )
