r"""The Lauscher cochlea, vectorised: audio in, spikes of 700 frequency channels out.

The chain that made the Spiking Heidelberg Digits (Cramer et al. 2020, the ``lauscher`` package):

0. resampling to the working rate :data:`WORKING_RATE` (16 kHz, ``Cochlea.sample_rate``), so that
   a recording gives the same spikes whatever rate it was stored at (Lauscher runs at the file's
   own rate, and below about 9 kHz its hair cell's Euler step is unstable: see below);
1. RMS normalisation, $x \leftarrow x\,\ell / \sqrt{\overline{x^2}}$ with $\ell = 0.3$;
2. a Hanning window over the whole clip: the first $\lfloor N/2\rfloor$ samples are multiplied by
   the rising half of ``numpy.hanning(2 * (N // 2))``, the last $\lfloor N/2\rfloor$ by its
   falling half;
3. the basilar membrane (:mod:`.basilar_membrane`), per channel in the frequency domain; its
   output, and everything after it, is sampled at half the audio rate;
4. a Meddis inner hair cell per channel (:mod:`.hair_cell`);
5. a bushy cell per channel fed by 40 stochastic fibres (:mod:`.bushy_cell`).

Lauscher runs stages 4 and 5 as Python loops over samples, one channel at a time. Here both run
as one ``jax.lax.scan`` over time whose step updates every channel of a batch of clips at once,
and the 40 fibres of a channel are drawn as one binomial count. The output has the same law as
Lauscher's; the random numbers differ, so spike trains agree in distribution, not spike for spike.

Why a working rate. Every stage after the membrane runs at half the audio rate, and the hair
cell's forward-Euler recursion is stable only for step rates above
:meth:`HairCell.lowest_stable_rate` (4540 Hz, audio above 9080 Hz): an 8 kHz telephone
recording run at its own rate fills every channel with structureless spikes. Resampled to 16 kHz
(``scipy.signal.resample_poly``), it gives the same statistics as a 48 kHz recording of the same
sound below 4 kHz, and the channels tuned above its Nyquist frequency hear nothing and fire only at
their spontaneous rate. 16 kHz keeps speech's useful band (up to 8 kHz), is what the default
data set is made at, and costs a third of 48 kHz (every stage's cost is proportional to the rate).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from ..._errors import ValidationError, ValidationTypeError
from .._audio.wav import resample
from .basilar_membrane import BasilarMembrane, membrane_velocity, output_rate
from .bushy_cell import BushyCell
from .hair_cell import HairCell
from .workers import run_tasks

# Samples per compiled scan call: long enough that dispatch is negligible, short enough that a
# batch's random numbers and outputs stay small. Part of what a seed means: keep it fixed.
_CHUNK = 1024
_MIN_SAMPLES = 16
# The rate every clip is resampled to before the membrane (see the module's docstring).
WORKING_RATE = 16000


class Spikes(NamedTuple):
    """Spikes of one clip, ordered by time, then channel."""

    times: np.ndarray  # [S] float64, seconds from the start of the clip
    units: np.ndarray  # [S] uint16, channel 0 (base, high frequencies) .. C-1 (apex, low)


@dataclasses.dataclass(frozen=True)
class Cochlea:
    """The whole chain's parameters; the defaults are Lauscher's, which made SHD.

    **Arguments:**

    - `rms_level`: RMS $\\ell$ the clip is normalised to.
    - `membrane`: a :class:`BasilarMembrane` (its `n_channels` sets the output channels).
    - `hair_cell`: a :class:`HairCell`.
    - `bushy_cell`: a :class:`BushyCell`.
    - `sample_rate`: the working rate in Hz every clip is resampled to first (default
      :data:`WORKING_RATE`); None runs each clip at its own rate, as Lauscher does (then rates
      that make the hair cell unstable are refused).
    """

    rms_level: float = 0.3
    membrane: BasilarMembrane = dataclasses.field(default_factory=BasilarMembrane)
    hair_cell: HairCell = dataclasses.field(default_factory=HairCell)
    bushy_cell: BushyCell = dataclasses.field(default_factory=BushyCell)
    sample_rate: int | None = WORKING_RATE

    def __post_init__(self):
        if self.sample_rate is not None:
            _check_rate(self.sample_rate, "Cochlea.sample_rate")
            self.check_stable(self.sample_rate)

    @property
    def n_channels(self) -> int:
        return self.membrane.n_channels

    def working_rate(self, sample_rate: int) -> int:
        """The rate (Hz) a clip recorded at `sample_rate` is processed at."""
        return int(sample_rate) if self.sample_rate is None else int(self.sample_rate)

    def check_stable(self, rate: int) -> None:
        """Raise `ValueError` if audio at `rate` Hz would make the hair cell's recursion unstable."""
        lowest = 2 * self.hair_cell.lowest_stable_rate()
        if output_rate(rate) <= self.hair_cell.lowest_stable_rate():
            raise ValidationError(
                f"the cochlea cannot run at {rate} Hz: its hair cell is unstable below "
                f"{lowest:.0f} Hz of audio; resample first (Cochlea(sample_rate={WORKING_RATE}), "
                "the default, does)"
            )


def _check_audio(audio, name: str) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim != 1:
        raise ValidationError(f"{name} must be a 1-D (mono) waveform, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValidationError(f"{name} must be numeric samples, got dtype {x.dtype}")
    if x.size < _MIN_SAMPLES:
        raise ValidationError(f"{name} has {x.size} samples; at least {_MIN_SAMPLES} are needed")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValidationError(f"{name} contains NaN or infinite samples")
    if not np.any(x):
        raise ValidationError(f"{name} is silent (all samples 0): nothing to normalise")
    return x


def _check_rate(sample_rate, name: str = "sample_rate") -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise ValidationTypeError(f"{name} must be an int in Hz, got {sample_rate!r}")
    if not 1000 <= sample_rate <= 384000:
        raise ValidationError(f"{name} must be in 1000..384000 Hz, got {sample_rate}")
    return int(sample_rate)


def preprocess(audio: np.ndarray, rms_level: float = 0.3) -> np.ndarray:
    """Stages 1 and 2: RMS normalisation and the whole-clip Hanning window.

    **Arguments:**

    - `audio`: ``[N]`` samples (any scale).
    - `rms_level`: target RMS.

    **Returns:** ``[N]`` float64.
    """
    x = _check_audio(audio, "audio")
    x = x * (rms_level / np.sqrt(np.mean(x**2)))
    half = x.size // 2
    ramp = np.hanning(2 * half)[:half]
    x[:half] *= ramp
    x[x.size - half :] *= ramp[::-1]
    return x


@functools.partial(jax.jit, static_argnums=(0, 1))
def _scan_chunk(model: Cochlea, rate: int, state, velocity, bits):
    """Hair cells and bushy cells over one chunk of ``[L, B, C]`` membrane velocities.

    `bits` holds ``[L, B, C]`` random uint32 words, one per channel and sample.
    """

    def step(carry, inputs):
        hair, bushy = carry
        v_t, bits_t = inputs
        # The top 24 bits make a float32 uniform in [0, 1) exactly.
        u_t = (bits_t >> 8).astype(jnp.float32) * (1.0 / (1 << 24))
        hair, p = model.hair_cell.step(hair, v_t, rate)
        bushy, fired = model.bushy_cell.step(bushy, p, u_t, rate)
        return (hair, bushy), fired

    return jax.lax.scan(step, state, (velocity, bits))


def _spike_trains(
    velocities: Sequence[np.ndarray], seeds: Sequence[int], rate: int, model: Cochlea, rows: int
) -> list[Spikes]:
    """Stages 4 and 5 for a batch of membrane velocities ``[M_b, C]`` (lengths may differ),
    scanned as `rows` rows (empty rows pad the batch)."""
    n_real = len(velocities)
    n_channels = model.n_channels
    empty = np.zeros((0, n_channels), np.float32)
    velocities = list(velocities) + [empty] * (rows - n_real)
    seeds = list(seeds) + [0] * (rows - n_real)
    batch = rows
    lengths = np.array([v.shape[0] for v in velocities])
    # One PCG64 stream per clip: a clip's randomness never depends on its batch. numpy's raw
    # generator is far cheaper on CPU than JAX's counter-based one, and this is the only per-
    # sample randomness the chain needs.
    streams = [np.random.Generator(np.random.PCG64(seed)).bit_generator for seed in seeds]
    shape = (batch, n_channels)
    state = (model.hair_cell.rest(shape), model.bushy_cell.init(shape, rate))
    found: list[list[np.ndarray]] = [[] for _ in range(batch)]

    def collect(start: int, fired) -> None:
        fired = np.asarray(fired)
        # Spikes are sparse (~0.2%): one flat scan is ten times cheaper than a 3-D nonzero.
        t, b, c = np.unravel_index(np.flatnonzero(fired), fired.shape)
        # `fired` at step t reports a spike at t - 1; samples past a clip's end are padding.
        t = t + (start - 1)
        keep = t < lengths[b] - 1
        t, b, c = t[keep], b[keep], c[keep]
        for i in range(batch):
            mine = b == i
            found[i].append(np.stack([t[mine], c[mine]]))

    # Chunks are dispatched asynchronously; the host prepares the next chunk and reads the
    # previous one's spikes while the current one runs.
    pending: list[tuple[int, jax.Array]] = []
    # Two sets of input buffers, used in turn: a chunk's inputs may be read (without a copy)
    # until its spikes are collected, one chunk later.
    buffers = [
        (
            np.empty((_CHUNK, batch, n_channels), np.float32),
            np.empty((_CHUNK, batch, n_channels), np.uint32),
        )
        for _ in range(2)
    ]
    for chunk, start in enumerate(range(0, int(lengths.max()), _CHUNK)):
        velocity, bits = buffers[chunk % 2]
        for b, v in enumerate(velocities):
            part = v[start : start + _CHUNK]
            velocity[: part.shape[0], b] = part
            velocity[part.shape[0] :, b] = 0.0
        for b, stream in enumerate(streams):
            words = stream.random_raw(_CHUNK * n_channels // 2 + 1).view(np.uint32)
            bits[:, b] = words[: _CHUNK * n_channels].reshape(_CHUNK, n_channels)
        state, fired = _scan_chunk(model, rate, state, jnp.asarray(velocity), jnp.asarray(bits))
        pending.append((start, fired))
        if len(pending) > 1:
            collect(*pending.pop(0))
    for item in pending:
        collect(*item)
    out = []
    for parts in found[:n_real]:
        t, c = np.concatenate(parts, axis=1)
        out.append(Spikes(t / float(rate), c.astype(np.uint16)))
    return out


def cochlea(
    audio: np.ndarray, sample_rate: int, *, seed: int = 0, model: Cochlea | None = None
) -> Spikes:
    """Spikes of one mono clip through the Lauscher cochlea.

    **Arguments:**

    - `audio`: ``[N]`` samples, any scale (the chain normalises the RMS).
    - `sample_rate`: audio rate in Hz (any: the clip is resampled to ``model.sample_rate``).
    - `seed`: the fibres' randomness; the same seed gives the same spikes.
    - `model`: a :class:`Cochlea` with the parameters of every stage (default: Lauscher's, at
      :data:`WORKING_RATE`).

    **Returns:** :class:`Spikes` with times in seconds on the grid of half the working rate.
    """
    return cochlea_batch([audio], sample_rate, seeds=[seed], model=model)[0]


def _one_batch(clips, sample_rate: int, seeds, model: Cochlea, rows: int) -> list[Spikes]:
    """Stages 1-5 for one batch of clips; also what a worker process runs."""
    velocities = [
        membrane_velocity(preprocess(x, model.rms_level), sample_rate, model.membrane)
        for x in clips
    ]
    # A sequential scan over small arrays is a CPU job even when an accelerator is present.
    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        return _spike_trains(velocities, seeds, output_rate(sample_rate), model, rows)


def cochlea_batch(
    clips: Sequence[np.ndarray],
    sample_rate: int,
    *,
    seeds: Sequence[int],
    model: Cochlea | None = None,
    batch_size: int = 8,
    workers: int = 1,
    progress: bool | str = False,
) -> list[Spikes]:
    """Spikes of many clips, `batch_size` at a time through one scan, in `workers` processes.

    A clip's spikes depend only on the clip, its seed and `model`: never on its batch, on the
    number of workers or on the order of the clips. Clips of equal length share the membrane's
    transfer matrix, the expensive part of a new length: pad clips to a few common lengths when
    converting many (see :func:`fast_length`), at the working rate.

    Clips are first resampled to the working rate ``model.sample_rate`` (see :mod:`.cochlea`);
    spike times are on the grid of half that rate.

    **Arguments:**

    - `clips`: mono waveforms, each ``[N_i]``.
    - `sample_rate`: their common rate in Hz.
    - `seeds`: one int (0 <= seed < 2**32) per clip.
    - `model`: a :class:`Cochlea` (default: Lauscher's parameters).
    - `batch_size`: clips per scan (8 suits a CPU cache; larger is not faster).
    - `workers`: processes to spread batches over (one scan runs on one core); 1 runs here.
    - `progress`: show a progress bar (a string is used as its label).

    **Returns:** one :class:`Spikes` per clip, in order.
    """
    model = Cochlea() if model is None else model
    sample_rate = _check_rate(sample_rate)
    seeds = [int(s) for s in seeds]
    if len(seeds) != len(clips):
        raise ValidationError(f"{len(clips)} clips but {len(seeds)} seeds; give one seed per clip")
    if any(not 0 <= s < 2**32 for s in seeds):
        raise ValidationError(f"seeds must be in 0..2**32-1, got {min(seeds)}..{max(seeds)}")
    for name, value in (("batch_size", batch_size), ("workers", workers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"{name} must be a positive int, got {value!r}")
    clips = [_check_audio(x, f"clip {i}") for i, x in enumerate(clips)]
    rate = model.working_rate(sample_rate)
    model.check_stable(rate)
    clips = [resample(x, sample_rate, rate) for x in clips]
    # Batches hold clips of one length: no time is spent on padding, and a length's transfer
    # matrix is computed once for all its batches.
    by_length: dict[int, list[int]] = {}
    for i in sorted(range(len(clips)), key=lambda i: clips[i].size):
        by_length.setdefault(clips[i].size, []).append(i)
    tasks = [
        idx[j : j + batch_size]
        for idx in by_length.values()
        for j in range(0, len(idx), batch_size)
    ]
    # Every scan gets the same number of rows (empty ones pad a short batch): one compilation.
    rows = min(batch_size, len(clips))
    out: list[Spikes | None] = [None] * len(clips)
    label = progress if isinstance(progress, str) else "cochlea"
    with tqdm(total=len(clips), desc=label, unit="clip", disable=not progress) as bar:
        jobs = [
            (
                _one_batch,
                ([clips[i] for i in idx], rate, [seeds[i] for i in idx], model, rows),
            )
            for idx in tasks
        ]

        def done(task: int, trains: list[Spikes]) -> None:
            for i, spikes in zip(tasks[task], trains):
                out[i] = spikes
            bar.update(len(trains))

        if workers > 1 and len(tasks) > 1:
            # A worker keeps to one clip length: its transfer matrix is then computed once.
            run_tasks(jobs, workers, on_result=done, groups=[clips[idx[0]].size for idx in tasks])
        else:
            for task, (function, args) in enumerate(jobs):
                done(task, function(*args))
    return out  # type: ignore[return-value]
