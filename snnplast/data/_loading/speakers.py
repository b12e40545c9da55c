"""Holding out whole speakers for validation.

SHD's test file contains speakers never heard in training; a validation set drawn from the same
speakers as training would overstate accuracy on them. So validation takes every sample of a few
speakers of the training file.
"""

from __future__ import annotations

import numpy as np

from ..._errors import ValidationError


def n_val_speakers(val_speakers: float | int, n_speakers: int) -> int:
    """How many of `n_speakers` to hold out for `val_speakers` (a fraction or a count)."""
    if isinstance(val_speakers, bool) or not isinstance(val_speakers, int | float | np.number):
        raise ValidationError(
            "val_speakers must be a fraction in [0, 1) or a count of speakers, "
            f"got {val_speakers!r}"
        )
    if isinstance(val_speakers, int | np.integer):
        count = int(val_speakers)
        if not 0 <= count < n_speakers:
            raise ValidationError(
                f"val_speakers={count} speakers, but the training file has {n_speakers}; "
                f"allowed 0..{n_speakers - 1} (at least one speaker must stay for training)"
            )
        return count
    fraction = float(val_speakers)
    if not 0.0 <= fraction < 1.0:
        raise ValidationError(f"val_speakers as a fraction must be in [0, 1), got {fraction!r}")
    if fraction == 0.0 or n_speakers < 2:
        return 0
    # At least one speaker, so any positive fraction gives a validation set.
    return min(n_speakers - 1, max(1, round(fraction * n_speakers)))


def split_by_speaker(
    speakers: np.ndarray, val_speakers: float | int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation samples, with no speaker in both.

    **Arguments:**

    - `speakers`: ``[N]`` speaker id per sample.
    - `val_speakers`: fraction of the speakers (float in [0, 1); at least one speaker when
      positive) or number of speakers (int) to hold out.
    - `seed`: which speakers are held out is a deterministic function of the seed.

    **Returns:** ``(train_indices, val_indices)``, each sorted ascending.
    """
    speakers = np.asarray(speakers)
    unique = np.unique(speakers)
    count = n_val_speakers(val_speakers, len(unique))
    held_out = np.random.default_rng(seed).permutation(unique)[:count]
    is_val = np.isin(speakers, held_out)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
