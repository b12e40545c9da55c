"""Event lists to dense count frames, binned by absolute time.

Bin ``k`` of ``n_bins`` covers ``[k, k + 1) * duration_s / n_bins`` seconds from the start of the
recording, for every sample alike: a spike at 0.7 s lands in bin 50 of 100 over 1.4 s whatever the
sample's first and last spikes are (unlike tonic's ``ToFrame(n_time_bins=...)``, which stretches
each sample's own span over the bins). Spikes at or after `duration_s` are dropped. Channel ``c``
goes to pooled channel ``c // pool``. With ``time_axis="word"`` the bins span each sample's word
instead (see :mod:`.time_axis`). A frame entry is the number of spikes in its bin and pooled
channel, clipped at 255 to fit uint8 (``binary=True`` gives 0/1 instead).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from ..._errors import ValidationError
from .time_axis import check_time_axis, on_time_axis

# Dense cells counted per np.bincount call: keeps the int64 scratch array (8 MiB) in cache, which
# is several times faster than one big call, and bounds memory whatever the data size.
_CELLS_PER_CHUNK = 1 << 20


def check_binning(n_bins, duration_s, n_channels, pool) -> int:
    """Validate binning parameters; return the number of pooled channels."""
    for name, value in (("n_bins", n_bins), ("n_channels", n_channels), ("pool", pool)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValidationError(f"{name} must be a positive int, got {value!r}")
    number = isinstance(duration_s, int | float | np.number) and not isinstance(duration_s, bool)
    if not (number and np.isfinite(duration_s) and duration_s > 0):
        raise ValidationError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    if n_channels % pool:
        divisors = [d for d in range(1, n_channels + 1) if n_channels % d == 0]
        raise ValidationError(
            f"pool={pool} does not divide n_channels={n_channels}; allowed pools: {divisors}"
        )
    return n_channels // pool


def _cell_index(times_s, units, n_bins, duration_s, n_channels, pool, where: str, time_axis):
    """Flat ``t * C + c`` index of every kept spike in a ``[T, C]`` frame."""
    t = np.asarray(times_s, dtype=np.float64)
    u = np.asarray(units)
    if t.shape != u.shape or t.ndim != 1:
        raise ValidationError(
            f"{where}: times and units must be 1-D of equal length, got shapes {t.shape} "
            f"and {u.shape}"
        )
    if t.size and (not np.all(np.isfinite(t)) or t.min() < 0):
        bad = t[~(np.isfinite(t) & (t >= 0))][0]
        raise ValidationError(f"{where}: spike time {bad!r} s; allowed: finite, >= 0")
    if u.size and (u.min() < 0 or u.max() >= n_channels):
        bad = u[(u < 0) | (u >= n_channels)][0]
        raise ValidationError(f"{where}: channel {bad!r}; allowed 0..{n_channels - 1}")
    t, u = on_time_axis(t, u, n_channels, duration_s, time_axis)
    # Multiplying before dividing keeps exact multiples of the bin width on their own bin
    # (0.7 * 100 / 1.4 == 50.0, whereas 0.7 / (1.4 / 100) == 49.99...).
    step = np.floor(t * n_bins / duration_s).astype(np.int64)
    keep = step < n_bins
    return step[keep] * (n_channels // pool) + u[keep].astype(np.int64) // pool


def _finish(counts: np.ndarray, binary: bool) -> np.ndarray:
    if binary:
        return (counts > 0).astype(np.uint8)
    return np.minimum(counts, 255, out=counts).astype(np.uint8)


def bin_events(
    times_s: np.ndarray,
    units: np.ndarray,
    n_bins: int = 100,
    duration_s: float = 1.4,
    n_channels: int = 700,
    pool: int = 1,
    *,
    binary: bool = False,
    time_axis: str = "absolute",
) -> np.ndarray:
    """Bin one sample's spikes by absolute time into a dense frame.

    **Arguments:**

    - `times_s`: ``[E]`` spike times in seconds (>= 0).
    - `units`: ``[E]`` spike channels in ``0..n_channels-1``.
    - `n_bins`: number of time bins ``T`` spanning ``[0, duration_s)``.
    - `duration_s`: seconds covered; later spikes are dropped.
    - `n_channels`: input channels (700 for SHD).
    - `pool`: channels summed into one (must divide `n_channels`; 5 gives 140 for SHD).
    - `binary`: 0/1 spike indicators instead of counts.
    - `time_axis`: ``"absolute"`` (bins over ``[0, duration_s)`` of the recording) or
      ``"word"`` (bins over the sample's word, found from its spike rate; see
      :func:`snnplast.data.word_span`).

    **Returns:** ``[T, n_channels // pool]`` uint8 counts clipped at 255 (or 0/1).
    """
    n_out = check_binning(n_bins, duration_s, n_channels, pool)
    check_time_axis(time_axis)
    cells = _cell_index(
        times_s, units, n_bins, duration_s, n_channels, pool, "bin_events", time_axis
    )
    counts = np.bincount(cells, minlength=n_bins * n_out)
    return _finish(counts, binary).reshape(n_bins, n_out)


def bin_samples(
    times: Sequence[np.ndarray],
    units: Sequence[np.ndarray],
    n_bins: int = 100,
    duration_s: float = 1.4,
    n_channels: int = 700,
    pool: int = 1,
    *,
    binary: bool = False,
    progress: bool = False,
    time_axis: str = "absolute",
) -> np.ndarray:
    """Bin many samples at once: :func:`bin_events` for each, with one ``bincount`` per chunk.

    **Arguments:** as :func:`bin_events`, with `times` and `units` lists of ``N`` per-sample
    arrays; `progress` shows a progress bar; `time_axis` applies to each sample on its own.

    **Returns:** ``[N, T, n_channels // pool]`` uint8.
    """
    if len(times) != len(units):
        raise ValidationError(f"bin_samples: {len(times)} time arrays but {len(units)} unit arrays")
    n_out = check_binning(n_bins, duration_s, n_channels, pool)
    check_time_axis(time_axis)
    frame = n_bins * n_out
    out = np.zeros((len(times), n_bins, n_out), dtype=np.uint8)
    chunk = max(1, _CELLS_PER_CHUNK // frame)
    with tqdm(total=len(times), desc="binning", unit="sample", disable=not progress) as bar:
        for start in range(0, len(times), chunk):
            stop = min(len(times), start + chunk)
            cells = [
                _cell_index(
                    times[i], units[i], n_bins, duration_s, n_channels, pool, f"sample {i}",
                    time_axis,
                )
                + (i - start) * frame
                for i in range(start, stop)
            ]
            counts = np.bincount(np.concatenate(cells), minlength=(stop - start) * frame)
            out[start:stop] = _finish(counts, binary).reshape(stop - start, n_bins, n_out)
            bar.update(stop - start)
    return out
