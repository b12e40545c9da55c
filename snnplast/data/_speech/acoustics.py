r"""The room and the recording channel, simulated: what makes synthetic speech sound recorded.

eSpeak NG's speech is clean, full-band and dry; people are recorded in rooms, through
microphones, often over a telephone band or at 8 kHz. With ``make_speech_shd(...,
acoustics=RECORDED)`` each training utterance passes through a random draw of this chain, in
this order:

1. **speed** (resampling by a factor near 1): tempo, pitch and formants move together, as between a
   shorter and a longer vocal tract;
2. **room**: convolution with a synthetic impulse response: a direct path, a few early
   reflections and an exponentially decaying diffuse tail of reverberation time $T_{60}$,
   $h(t) \propto n(t)\,10^{-3t/T_{60}}$ for white noise $n$;
3. **microphone colouring**: a smooth random gain over log-frequency (a spectral tilt plus a few
   broad peaks and dips), applied in the frequency domain with zero phase;
4. **channel**: full band, a telephone band (300-3400 Hz, 4th-order Butterworth) or an 8 kHz
   recording (down to 8 kHz and back, which removes everything above 4 kHz);
5. **noise** at a random signal-to-noise ratio over the whole clip, silences included: white,
   pink ($1/f$), brown ($1/f^2$) or mains hum with harmonics, as recorded rooms and lines have.

A level change alone would change nothing: the cochlea normalises every clip's RMS. Everything
is a deterministic function of the random generator it is given.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.fft
from scipy.signal import butter, fftconvolve, sosfiltfilt

from ..._errors import ValidationError
from .._audio.wav import resample

NOISE_KINDS = ("white", "pink", "brown", "hum")
CHANNELS = ("full", "telephone", "8khz")


def _check_range(name: str, value, lo: float, hi: float) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a pair (low, high), got {value!r}") from None
    if not (lo <= a <= b <= hi):
        raise ValidationError(f"{name} must satisfy {lo} <= low <= high <= {hi}, got {value!r}")
    return a, b


def _check_probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValidationError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def room_impulse_response(rate: int, rt60: float, drr_db: float, rng: np.random.Generator):
    """A synthetic room impulse response.

    **Arguments:**

    - `rate`: sample rate in Hz.
    - `rt60`: reverberation time in seconds (the tail falls by 60 dB in this time).
    - `drr_db`: direct-to-reverberant energy ratio in dB.
    - `rng`: randomness.

    **Returns:** ``[L]`` float64, ``h[0] = 1`` (the direct path), length ``rt60`` seconds.
    """
    n = max(2, int(rt60 * rate))
    t = np.arange(n) / rate
    tail = rng.standard_normal(n) * 10 ** (-3 * t / rt60)
    # Early reflections: a few discrete echoes 2-20 ms after the direct sound.
    for delay in rng.uniform(0.002, 0.02, size=4):
        k = int(delay * rate)
        if k < n:
            tail[k] += rng.uniform(-1, 1) * 10 ** (-3 * delay / rt60) * 3
    tail[0] = 0.0
    energy = float(np.sum(tail**2))
    h = tail * math.sqrt(10 ** (-drr_db / 10) / energy) if energy > 0 else tail
    h[0] = 1.0
    return h


def colouring_gain(freqs: np.ndarray, tilt_db: float, bumps) -> np.ndarray:
    """Linear gain at `freqs` (Hz) of a tilt (dB per octave around 1 kHz) plus Gaussian bumps
    ``(centre Hz, width octaves, gain dB)`` on a log-frequency axis."""
    octaves = np.log2(np.maximum(freqs, 20.0) / 1000.0)
    db = tilt_db * octaves
    for centre, width, gain in bumps:
        db = db + gain * np.exp(-0.5 * ((octaves - math.log2(centre / 1000.0)) / width) ** 2)
    return 10 ** (db / 20)


def coloured_noise(n: int, kind: str, rate: int, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of unit-RMS noise of `kind` (one of :data:`NOISE_KINDS`)."""
    if kind == "hum":
        t = np.arange(n) / rate
        mains = rng.choice([50.0, 60.0])
        x = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 6.3))
                for k in range(1, 8))  # fmt: skip
        x = x + 0.1 * rng.standard_normal(n)
    else:
        spectrum = scipy.fft.rfft(rng.standard_normal(n))
        f = np.maximum(np.fft.rfftfreq(n, 1.0 / rate), 20.0)
        power = {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind]
        x = scipy.fft.irfft(spectrum / f ** (power / 2), n)
    return x / max(float(np.sqrt(np.mean(x**2))), 1e-12)


@dataclasses.dataclass(frozen=True)
class Acoustics:
    """How each utterance is recorded: the probabilities and ranges the chain is drawn from.

    **Arguments:**

    - `speed`: ``(low, high)`` resampling factor (1 is unchanged; 1.1 is 10% faster and higher).
    - `p_room`: probability of reverberation; `rt60` ``(low, high)`` seconds and `drr_db`
      ``(low, high)`` direct-to-reverberant ratio.
    - `p_colour`: probability of microphone colouring; `tilt_db` ``(low, high)`` dB per octave,
      and up to three bumps of ``+-bump_db`` dB.
    - `channels`: probabilities of the ``full``, ``telephone`` and ``8khz`` channels.
    - `p_noise`: probability of added noise; `snr_db` ``(low, high)``; `noise_kinds` to draw from.
    """

    speed: tuple[float, float] = (1.0, 1.0)
    p_room: float = 0.0
    rt60: tuple[float, float] = (0.1, 0.6)
    drr_db: tuple[float, float] = (0.0, 15.0)
    p_colour: float = 0.0
    tilt_db: tuple[float, float] = (-3.0, 3.0)
    bump_db: float = 8.0
    channels: tuple[float, float, float] = (1.0, 0.0, 0.0)
    p_noise: float = 0.0
    snr_db: tuple[float, float] = (10.0, 40.0)
    noise_kinds: tuple[str, ...] = NOISE_KINDS

    def __post_init__(self):
        _check_range("speed", self.speed, 0.5, 2.0)
        _check_range("rt60", self.rt60, 0.01, 3.0)
        _check_range("drr_db", self.drr_db, -20.0, 40.0)
        _check_range("tilt_db", self.tilt_db, -12.0, 12.0)
        _check_range("snr_db", self.snr_db, -20.0, 120.0)
        for name in ("p_room", "p_colour", "p_noise"):
            _check_probability(name, getattr(self, name))
        if not 0 <= self.bump_db <= 24:
            raise ValidationError(f"bump_db must be in 0..24 dB, got {self.bump_db!r}")
        if (
            len(self.channels) != len(CHANNELS)
            or any(p < 0 for p in self.channels)
            or not (math.isclose(sum(self.channels), 1.0, abs_tol=1e-9))
        ):
            raise ValidationError(
                f"channels must be {len(CHANNELS)} probabilities of {CHANNELS} summing to 1, "
                f"got {self.channels!r}"
            )
        unknown = set(self.noise_kinds) - set(NOISE_KINDS)
        if not self.noise_kinds or unknown:
            raise ValidationError(f"noise_kinds must be a non-empty subset of {NOISE_KINDS}, got "
                             f"{self.noise_kinds!r}")  # fmt: skip

    def apply(
        self, speech: np.ndarray, rate: int, rng: np.random.Generator, place=None
    ) -> np.ndarray:
        """One random recording of `speech` (``[N]`` at `rate` Hz).

        **Arguments:**

        - `speech`: the dry speech.
        - `rate`: its rate in Hz (the result's too).
        - `rng`: randomness; the same state gives the same recording.
        - `place`: called on the sped-up speech to put it into its clip (trimming, padding with
          silence) before the room, microphone, channel and noise act on the whole clip, its
          silences included; None keeps it as it is.

        **Returns:** float64 at `rate`, as long as `place` makes it.
        """
        x = np.asarray(speech, np.float64)
        # In steps of 1%: the resampling ratio stays one of small integers (100 / 105 = 20 / 21).
        percent = round(100 * rng.uniform(*self.speed))
        if percent != 100:
            # Played faster by percent / 100: resampled to fewer samples, still called `rate`.
            x = resample(x, percent, 100)
        if place is not None:
            x = place(x)
        n = x.size
        if rng.random() < self.p_room:
            h = room_impulse_response(rate, rng.uniform(*self.rt60), rng.uniform(*self.drr_db), rng)
            # The tail past the clip's end is cut: the clip's length is the grid's.
            x = fftconvolve(x, h)[:n]
        if rng.random() < self.p_colour:
            bumps = [
                (math.exp(rng.uniform(math.log(200), math.log(6000))), rng.uniform(0.3, 1.0),
                 rng.uniform(-self.bump_db, self.bump_db))
                for _ in range(int(rng.integers(1, 4)))
            ]  # fmt: skip
            gain = colouring_gain(np.fft.rfftfreq(n, 1.0 / rate), rng.uniform(*self.tilt_db),
                                  bumps)  # fmt: skip
            x = scipy.fft.irfft(scipy.fft.rfft(x) * gain, n)
        channel = CHANNELS[int(rng.choice(len(CHANNELS), p=np.asarray(self.channels)))]
        if channel == "telephone":
            x = sosfiltfilt(butter(4, [300, 3400], btype="band", fs=rate, output="sos"), x)
        elif channel == "8khz" and rate > 8000:
            x = resample(resample(x, rate, 8000), 8000, rate)[:n]
        if rng.random() < self.p_noise:
            kind = self.noise_kinds[int(rng.integers(len(self.noise_kinds)))]
            level = float(np.sqrt(np.mean(x**2))) * 10 ** (-rng.uniform(*self.snr_db) / 20)
            x = x + level * coloured_noise(n, kind, rate, rng)
        return x


# No change at all: eSpeak NG's dry, full-band speech.
CLEAN = Acoustics()
# Every ingredient, each on part of the utterances: ``make_speech_shd(..., acoustics=RECORDED)``.
# Not the default: trained on it, a network did no better on real voices than on dry speech
# (benchmarks/sim_to_real.py; README).
RECORDED = Acoustics(
    speed=(0.9, 1.1), p_room=0.5, p_colour=0.8, channels=(0.4, 0.2, 0.4), p_noise=0.7,
)  # fmt: skip
