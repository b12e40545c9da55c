"""Data augmentation of training batches: shifts along the frequency (channel) axis.

Speakers differ in vocal-tract length, which moves their formants along the cochlea; a voice
the network never heard looks like a known one shifted by a few channels. Shifting each
training sample by a random number of channels teaches that invariance.
"""

from __future__ import annotations

import numpy as np

from .._errors import ValidationError


def check_channel_shift(value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"channel_shift must be an integer >= 0, got {value!r}")


def shift_channels(x: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Each sample's channels moved by its shift, zeros shifted in.

    **Arguments:**

    - `x`: a batch ``[B, T, C]``.
    - `shifts`: ``[B]`` integers; sample ``b``'s channel ``c`` moves to ``c + shifts[b]``.

    **Returns:** an array like `x`.
    """
    n_channels = x.shape[-1]
    source = np.arange(n_channels)[None, :] - np.asarray(shifts)[:, None]  # [B, C]
    inside = (source >= 0) & (source < n_channels)
    index = np.broadcast_to(np.clip(source, 0, n_channels - 1)[:, None, :], x.shape)
    return np.where(inside[:, None, :], np.take_along_axis(x, index, axis=-1), 0).astype(x.dtype)


def random_channel_shift(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """`x` ``[B, T, C]`` with each sample shifted by a uniform integer in ``[-max_shift,
    max_shift]``; `x` itself (and no draw from `rng`) when `max_shift` is 0."""
    if max_shift == 0:
        return x
    return shift_channels(x, rng.integers(-max_shift, max_shift + 1, size=x.shape[0]))
