"""Recordings at any sample rate: resampled to the cochlea's working rate, they give the same spikes.

The test sound is synthesised here (no recordings are needed): a voiced vowel with three formants
and a gliding pitch, then a fricative of band-passed noise (3-9 kHz, like "s"), made at 48 kHz and
resampled with scipy to every other rate, as a recorder at that rate would have stored it.
"""

import math
import wave

import h5py
import numpy as np
import pytest
from scipy.signal import butter, resample_poly, sosfilt

from snnplast.data import BasilarMembrane, Cochlea, cochlea, cochlea_batch, convert_audio, resample
from snnplast.data._cochlea.cochlea import WORKING_RATE, _spike_trains

RATES = (8000, 16000, 22050, 44100, 48000)
SEEDS = 4


def utterance(rate=48000, seconds=0.5, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 20 * np.sin(2 * np.pi * 2 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = np.zeros_like(t)
    for k in range(1, 60):
        f = k * f0
        gain = (
            np.exp(-(((f - 700) / 150) ** 2))
            + 0.6 * np.exp(-(((f - 1200) / 200) ** 2))
            + 0.3 * np.exp(-(((f - 2600) / 300) ** 2))
        )
        voiced += (gain + 0.01) * np.sin(k * phase) * (f < rate / 2)
    vowel = np.clip((t - 0.05) / 0.03, 0, 1) * np.clip((0.3 - t) / 0.03, 0, 1)
    noise = sosfilt(butter(4, [3000, 9000], btype="band", fs=rate, output="sos"),
                    rng.standard_normal(t.size))  # fmt: skip
    hiss = np.clip((t - 0.32) / 0.02, 0, 1) * np.clip((0.47 - t) / 0.02, 0, 1)
    return voiced * vowel + 0.5 * noise * hiss * np.std(voiced) / np.std(noise)


def at_rate(x48, rate):
    g = math.gcd(rate, 48000)
    return resample_poly(x48, rate // g, 48000 // g)


def mean_counts(spikes):
    return np.mean([np.bincount(s.units, minlength=700) for s in spikes], axis=0)


def test_resample_length_and_anti_aliasing():
    t = np.arange(48000) / 48000
    low, high = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 6000 * t)
    assert resample(np.ones(11025), 22050, 16000).size == 8000
    assert resample(np.ones(1001), 16000, 8000).size == math.ceil(1001 * 8000 / 16000)
    # Below the new Nyquist frequency a tone keeps its amplitude; above it, it is removed.
    mid = slice(1000, -1000)
    assert np.sqrt(2 * np.mean(resample(low, 48000, 8000)[mid] ** 2)) == pytest.approx(1, abs=0.01)
    assert np.sqrt(2 * np.mean(resample(high, 48000, 8000)[mid] ** 2)) < 1e-3
    with pytest.raises(ValueError, match="positive int"):
        resample(low, 0, 16000)


def test_spike_counts_agree_across_sample_rates():
    """Per-channel spike counts (mean of 4 seeds, different seeds at every rate) correlate >= 0.9
    between every pair of rates, and total counts agree within 10%."""
    x48 = utterance()
    counts = {
        rate: mean_counts(cochlea_batch([at_rate(x48, rate)] * SEEDS, rate,
                                        seeds=[100 * i + s for s in range(SEEDS)]))
        for i, rate in enumerate(RATES)
    }  # fmt: skip
    for a in RATES:
        for b in RATES:
            if a < b:
                corr = np.corrcoef(counts[a], counts[b])[0, 1]
                assert corr >= 0.9, (a, b, corr)
                assert counts[a].sum() == pytest.approx(counts[b].sum(), rel=0.1), (a, b)


def test_channels_above_nyquist_fire_at_their_spontaneous_rate():
    """At 8 kHz, channels tuned above the Nyquist frequency (their response to every frequency
    below 4 kHz at least 10 dB under their peak: the cochlea's filters have long low-frequency
    tails) fire as they do with no sound at all, in blocks of 10 channels within 4 Poisson
    standard deviations."""
    membrane = BasilarMembrane()
    below = np.abs(membrane.transfer(2 * np.pi * np.linspace(20, 4000, 200), membrane.positions))
    peak = np.abs(membrane.transfer(2 * np.pi * np.geomspace(20, 24000, 2000), membrane.positions))
    above = np.flatnonzero(below.max(1) < 10 ** (-10 / 20) * peak.max(1))
    assert 50 <= above.size < 350 and np.all(np.diff(above) == 1) and above[0] == 0

    x8 = at_rate(utterance(), 8000)
    sound = mean_counts(cochlea_batch([x8] * SEEDS, 8000, seeds=range(SEEDS)))
    # No sound: the membrane at rest, the rest of the chain as in any clip of this length.
    n = resample(x8, 8000, WORKING_RATE).size // 2 + 1
    silence = [np.zeros((n, 700), np.float32)] * SEEDS
    quiet = mean_counts(_spike_trains(silence, range(50, 50 + SEEDS), WORKING_RATE // 2,
                                      Cochlea(), SEEDS))  # fmt: skip
    for block in np.array_split(above, above.size // 10):
        a, b = SEEDS * sound[block].sum(), SEEDS * quiet[block].sum()
        assert a - b <= 4 * np.sqrt(a + b), (block[0], a, b)
    # The same clip drives the channels tuned below 4 kHz far above their spontaneous rate.
    speech_band = slice(300, 600)
    assert sound[speech_band].sum() > 5 * quiet[speech_band].sum()


def test_rates_that_make_the_hair_cell_unstable_are_refused():
    x = at_rate(utterance(seconds=0.1), 8000)
    with pytest.raises(ValueError, match="unstable below 9080 Hz"):
        Cochlea(sample_rate=8000)
    with pytest.raises(ValueError, match="resample first"):
        cochlea(x, 8000, model=Cochlea(sample_rate=None))
    own = cochlea(at_rate(utterance(seconds=0.1), 16000), 16000, model=Cochlea(sample_rate=None))
    default = cochlea(at_rate(utterance(seconds=0.1), 16000), 16000)
    np.testing.assert_array_equal(own.units, default.units)


def write_wav(path, x, rate):
    data = np.round(np.clip(x / np.abs(x).max() * 0.8, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(data.tobytes())


def test_convert_audio_gives_the_same_spikes_at_8_and_48_khz(tmp_path):
    x48 = utterance(seconds=0.4)
    counts = {}
    for rate in (8000, 48000):
        folder = tmp_path / str(rate)
        folder.mkdir()
        for i in range(3):
            write_wav(folder / f"3_speaker_{i}.wav", at_rate(x48, rate), rate)
        out = convert_audio(folder, tmp_path / f"{rate}.h5", progress=False, workers=1)
        with h5py.File(out, "r") as f:
            units = f["spikes/units"][()]
            times = f["spikes/times"][()]
        counts[rate] = np.mean([np.bincount(u, minlength=700) for u in units], axis=0)
        # Times are on the recording's own clock, whatever rate it was stored at.
        assert max(t.max() for t in times) <= 0.4 + 1e-3  # float16 times
    assert np.corrcoef(counts[8000], counts[48000])[0, 1] >= 0.9
    assert counts[8000].sum() == pytest.approx(counts[48000].sum(), rel=0.1)
