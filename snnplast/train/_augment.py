"""Data augmentation of training batches, in the spike domain (binned counts ``[B, T, C]``).

- Channel shift. Speakers differ in vocal-tract length, which moves their formants along the
  cochlea; a voice the network never heard looks like a known one shifted by a few channels.
- Time stretch. Speakers differ in speaking rate, and one speaker from one take to the next:
  a word said 10% slower is, to a first approximation, the same spikes 10% later, at the same
  rates. Stretching each sample's time axis (nearest bin, so rates are kept) teaches that.
- Time shift. Where a word starts in its clip depends on how the clip was cut (a recording
  trimmed to the word starts it earlier than a clip with margins).
- Spike drop. Each spike is kept with a probability: the same word heard at a lower rate.
- Masks (SpecAugment, Park et al. 2019). A random run of time bins, and a random band of
  channels, silenced: a word must be recognised when part of it is missing or different (a
  fricative a recording lacks, a formant a voice puts elsewhere).
- Blend (Nowotny, Turner & Knight 2022 used it on SHD). A sample is mixed with another
  training sample of the same word, aligned on their centres of mass in time, each spike of
  either kept with probability 1/2: a voice between two voices the set holds.

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


def check_mask(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{name} must be an integer >= 0, got {value!r}")


def check_blend(value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValidationError(f"blend must be a probability in [0, 1], got {value!r}")


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


def mask(x: np.ndarray, axis: int, starts: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Each sample with ``widths[b]`` positions from ``starts[b]`` along `axis` (1: time, 2:
    channels) set to 0."""
    position = np.arange(x.shape[axis])[None, :]
    hidden = (position >= starts[:, None]) & (position < (starts + widths)[:, None])  # [B, L]
    hidden = hidden[:, :, None] if axis == 1 else hidden[:, None, :]
    return np.where(hidden, 0, x).astype(x.dtype)


def random_mask(x: np.ndarray, axis: int, max_width: int, rng: np.random.Generator) -> np.ndarray:
    """`x` with one run of a uniform width in ``[0, max_width]`` at a uniform place along `axis`
    silenced per sample; `x` itself (no draw) when `max_width` is 0."""
    if max_width == 0:
        return x
    size = x.shape[axis]
    widths = rng.integers(0, min(max_width, size) + 1, size=x.shape[0])
    starts = (rng.random(x.shape[0]) * (size - widths + 1)).astype(np.int64)
    return mask(x, axis, starts, widths)


def _time_centre(x: np.ndarray) -> np.ndarray:
    """``[B]`` spike-weighted mean time bin of each sample (the middle for a silent one)."""
    counts = x.astype(np.float64).sum(axis=2)  # [B, T]
    total = counts.sum(axis=1)
    t = np.arange(x.shape[1])
    return np.where(total > 0, counts @ t / np.maximum(total, 1), (x.shape[1] - 1) / 2)


def blend(x: np.ndarray, partners: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """With probability `p` per sample, `x` mixed with its partner: the partner moved in time
    so that the two centres of mass meet, then each spike of either kept with probability 1/2.

    **Arguments:**

    - `x`, `partners`: batches ``[B, T, C]``; ``partners[b]`` is mixed into ``x[b]``.
    - `p`: probability that a sample is blended.
    - `rng`: the source of randomness.

    **Returns:** an array like `x`.
    """
    chosen = rng.random(x.shape[0]) < p
    shifts = np.round(_time_centre(x) - _time_centre(partners)).astype(np.int64)
    aligned = shift_time(partners, shifts)
    mixed = drop_spikes(x, 0.5, rng) + drop_spikes(aligned, 0.5, rng)
    return np.where(chosen[:, None, None], mixed, x).astype(x.dtype)


def same_class_partners(labels: np.ndarray, members: dict, rng: np.random.Generator) -> np.ndarray:
    """For each label, the index of a random training sample of the same class.

    **Arguments:**

    - `labels`: ``[B]`` classes.
    - `members`: class -> index array of its training samples (from :func:`class_members`).
    - `rng`: the source of randomness.

    **Returns:** ``[B]`` indices.
    """
    u = rng.random(len(labels))
    return np.array([members[c][int(v * len(members[c]))] for c, v in zip(labels.tolist(), u)])


def class_members(labels: np.ndarray) -> dict:
    """class -> index array of the samples with that label."""
    labels = np.asarray(labels)
    return {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}


@dataclasses.dataclass(frozen=True)
class Augment:
    """The augmentation of training batches (see the module's text); every field 0 is none.

    **Fields:**

    - `channel_shift`: channels, a uniform integer in ``[-k, k]`` per sample.
    - `time_stretch`: ``s``, a factor uniform in ``[1 - s, 1 + s]`` per sample.
    - `time_shift`: bins, a uniform integer in ``[-k, k]`` per sample.
    - `spike_drop`: probability of removing each spike.
    - `time_mask`: at most this many consecutive bins silenced per sample.
    - `channel_mask`: at most this many consecutive channels silenced per sample.
    - `blend`: probability that a sample is blended with another of its class (:func:`blend`;
      the partner is drawn by :func:`training_batches`, which knows the split, before the rest).
    """

    channel_shift: int = 0
    time_stretch: float = 0.0
    time_shift: int = 0
    spike_drop: float = 0.0
    blend: float = 0.0
    time_mask: int = 0
    channel_mask: int = 0

    def __post_init__(self):
        check_channel_shift(self.channel_shift)
        check_time_stretch(self.time_stretch)
        check_time_shift(self.time_shift)
        check_spike_drop(self.spike_drop)
        check_blend(self.blend)
        check_mask("time_mask", self.time_mask)
        check_mask("channel_mask", self.channel_mask)

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
        x = random_mask(x, 1, self.time_mask, rng)
        return random_mask(x, 2, self.channel_mask, rng)
