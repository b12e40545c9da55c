"""WAV files made for the tests: a short harmonic tone with a little noise, 16-bit mono."""

import wave

import numpy as np

RATE = 16000


def write_tone(path, seconds=0.05, f0=150.0, seed=0, rate=RATE):
    """Write `seconds` of a tone at `f0` Hz (harmonics 1..7) to `path`, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
    x = 0.3 * x / np.abs(x).max() + 0.003 * np.random.default_rng(seed).standard_normal(t.size)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.round(x * 32767).astype("<i2").tobytes())
