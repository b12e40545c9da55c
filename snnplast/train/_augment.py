"""Data augmentation of training batches, in the spike domain (binned counts ``[B, T, C]``).

- Channel shift. Speakers differ in vocal-tract length, which moves their formants along the
  cochlea; a voice the network never heard looks like a known one shifted by a few channels.
- Time stretch. Speakers differ in speaking rate, and one speaker from one take to the next:
  a word said 10% slower is, to a first approximation, the same spikes 10% later, at the same
  rates. Stretching each sample's time axis (nearest bin, so rates are kept) teaches that.
- Time shift. Where a word starts in its clip depends on how the clip was cut (a recording
  trimmed to the word starts it earlier than a clip with margins).
- Spike drop. Each spike is kept with a probability: the same word heard at a lower rate.

Each is drawn per sample from the trainer's generator, and draws nothing when it is off, so a
run without it repeats a run made before it existed.
"""

from __future__ import annotations

import dataclasses

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


def check_time_stretch(value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValidationError(f"time_stretch must be a number in [0, 1), got {value!r}")


def check_time_shift(value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"time_shift must be an integer >= 0, got {value!r}")


def check_spike_drop(value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValidationError(f"spike_drop must be a number in [0, 1), got {value!r}")


def _take_time(x: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``out[b, t] = x[b, source[b, t]]``, zeros where the source lies outside ``[0, T)``."""
    n_bins = x.shape[1]
    inside = (source >= 0) & (source < n_bins)
    index = np.broadcast_to(np.clip(source, 0, n_bins - 1)[:, :, None], x.shape)
    return np.where(inside[:, :, None], np.take_along_axis(x, index, axis=1), 0).astype(x.dtype)


def stretch_time(x: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Each sample's time axis stretched by its factor from bin 0, nearest bin (rates kept).

    **Arguments:**

    - `x`: a batch ``[B, T, C]``.
    - `factors`: ``[B]`` positive; sample ``b``'s bin ``t`` moves to about ``t * factors[b]``
      (a factor above 1 is a slower word; what leaves the window is cut, zeros fill the end).

    **Returns:** an array like `x`.
    """
    t = np.arange(x.shape[1])[None, :]
    return _take_time(x, np.floor(t / np.asarray(factors)[:, None]).astype(np.int64))


def shift_time(x: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Each sample moved later by its shift in bins (earlier if negative), zeros shifted in."""
    t = np.arange(x.shape[1])[None, :]
    return _take_time(x, t - np.asarray(shifts)[:, None])


def drop_spikes(x: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Each spike of the counts `x` removed with probability `p` (binomial thinning)."""
    return rng.binomial(x.astype(np.int64), 1.0 - p).astype(x.dtype)


@dataclasses.dataclass(frozen=True)
class Augment:
    """The augmentation of training batches (see the module's text); every field 0 is none.

    **Fields:**

    - `channel_shift`: channels, a uniform integer in ``[-k, k]`` per sample.
    - `time_stretch`: ``s``, a factor uniform in ``[1 - s, 1 + s]`` per sample.
    - `time_shift`: bins, a uniform integer in ``[-k, k]`` per sample.
    - `spike_drop`: probability of removing each spike.
    """

    channel_shift: int = 0
    time_stretch: float = 0.0
    time_shift: int = 0
    spike_drop: float = 0.0

    def __post_init__(self):
        check_channel_shift(self.channel_shift)
        check_time_stretch(self.time_stretch)
        check_time_shift(self.time_shift)
        check_spike_drop(self.spike_drop)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """`x` ``[B, T, C]`` augmented, drawing from `rng` in the order of the fields (and not
        at all for a field that is 0)."""
        x = random_channel_shift(x, self.channel_shift, rng)
        if self.time_stretch:
            s = self.time_stretch
            x = stretch_time(x, rng.uniform(1 - s, 1 + s, size=x.shape[0]))
        if self.time_shift:
            k = self.time_shift
            x = shift_time(x, rng.integers(-k, k + 1, size=x.shape[0]))
        if self.spike_drop:
            x = drop_spikes(x, self.spike_drop, rng)
        return x
