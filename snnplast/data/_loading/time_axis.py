"""What a sample's time bins span: the recording's absolute time, or the word it holds.

``"absolute"`` (the default) bins ``[0, duration)`` of every sample alike. ``"word"`` finds
each sample's word from its spike rate and stretches it over the bins, with a margin of
:data:`WORD_MARGIN` of its length on either side: the network then sees every word at the same
place and length, whatever the speaker's rate and the recording's leading silence. This is a
normalisation, not an augmentation: training data and recordings to evaluate are binned alike
(``snnplast evaluate`` reads the run's setting).

The word is where the spike rate of the channels tuned below about 5 kHz (the last 5/7 of the
channels in SHD's order, base first) rises above its floor by a fifth of its peak, in 10 ms
frames smoothed over 50 ms: an 8 kHz or telephone-band recording has only spontaneous firing
above, so the same word is found in a full-band and a band-limited clip.
"""

from __future__ import annotations

import numpy as np

from ..._errors import ValidationError

WORD_MARGIN = 0.125  # of the word's length, before and after it
_FRAME_S = 0.01
_SMOOTH_FRAMES = 5
_THRESHOLD = 0.2  # of the smoothed rate's peak above its floor
_FLOOR_PERCENTILE = 5
_LOW_BAND_START = 2 / 7  # first channel, as a fraction of all, of those used to find the word


def word_span(times_s, units, n_channels: int, duration_s: float) -> tuple[float, float]:
    """Start and end (seconds) of the word in one sample's spikes.

    **Arguments:**

    - `times_s`, `units`: ``[E]`` spike times (seconds) and channels of one sample.
    - `n_channels`: channels of the sample's cochlea, base (high frequencies) first.
    - `duration_s`: seconds the sample's bins would cover; later spikes are not looked at.

    **Returns:** ``(start, end)`` with ``0 <= start < end <= duration_s``; the whole
    ``(0, duration_s)`` when the rate never rises above its floor (silence, or no spikes).
    """
    n_frames = max(1, int(np.ceil(duration_s / _FRAME_S)))
    t = np.asarray(times_s, dtype=np.float64)
    u = np.asarray(units)
    keep = (u >= int(_LOW_BAND_START * n_channels)) & (t >= 0) & (t < duration_s)
    frames = np.minimum((t[keep] / _FRAME_S).astype(np.int64), n_frames - 1)
    rate = np.bincount(frames, minlength=n_frames).astype(np.float64)
    # Edge frames repeated outward, so that the window's ends do not look like a quieter floor.
    half = _SMOOTH_FRAMES // 2
    padded = np.pad(rate, (half, _SMOOTH_FRAMES - 1 - half), mode="edge")
    rate = np.convolve(padded, np.ones(_SMOOTH_FRAMES) / _SMOOTH_FRAMES, mode="valid")
    level = rate - np.percentile(rate, _FLOOR_PERCENTILE)
    if level.max() <= 0:
        return 0.0, float(duration_s)
    above = np.flatnonzero(level > _THRESHOLD * level.max())
    return float(above[0] * _FRAME_S), float(min(duration_s, (above[-1] + 1) * _FRAME_S))


def _absolute(times_s, units, n_channels, duration_s):
    return np.asarray(times_s, dtype=np.float64), np.asarray(units)


def _word(times_s, units, n_channels, duration_s):
    start, end = word_span(times_s, units, n_channels, duration_s)
    margin = WORD_MARGIN * (end - start)
    start, end = start - margin, end + margin
    t = (np.asarray(times_s, dtype=np.float64) - start) * (duration_s / (end - start))
    keep = (t >= 0) & (t < duration_s)
    return t[keep], np.asarray(units)[keep]


# name -> (times, units, n_channels, duration) -> (times, units) on the binned clock
TIME_AXES = {"absolute": _absolute, "word": _word}


def check_time_axis(time_axis) -> str:
    """`time_axis` checked against :data:`TIME_AXES` (a one-line error naming the allowed
    ones); returned as given."""
    if time_axis not in TIME_AXES:
        raise ValidationError(f"time_axis must be one of {sorted(TIME_AXES)}, got {time_axis!r}")
    return time_axis


def on_time_axis(times_s, units, n_channels: int, duration_s: float, time_axis: str):
    """One sample's spikes on the clock of `time_axis`: ``(times, units)`` to bin over
    ``[0, duration_s)`` (spikes the axis leaves out are dropped)."""
    return TIME_AXES[check_time_axis(time_axis)](times_s, units, n_channels, duration_s)
