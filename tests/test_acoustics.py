"""The simulated room and recording channel that the default data set's training speech goes through."""

import dataclasses

import numpy as np
import pytest

from snnplast.data._speech.acoustics import (
    CLEAN,
    RECORDED,
    Acoustics,
    coloured_noise,
    room_impulse_response,
)

RATE = 16000


def noise(n=RATE, seed=0):
    return np.random.default_rng(seed).standard_normal(n)


def band_power(x, lo, hi, rate=RATE):
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / rate)
    return spectrum[(f >= lo) & (f < hi)].sum()


def test_clean_changes_nothing_and_recorded_is_deterministic():
    x = noise()
    assert np.array_equal(CLEAN.apply(x, RATE, np.random.default_rng(3)), x)
    a = RECORDED.apply(x, RATE, np.random.default_rng(3))
    b = RECORDED.apply(x, RATE, np.random.default_rng(3))
    c = RECORDED.apply(x, RATE, np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_speed_moves_a_tone_and_shortens_it():
    t = np.arange(RATE) / RATE
    tone = np.sin(2 * np.pi * 1000 * t)
    fast = dataclasses.replace(CLEAN, speed=(1.1, 1.1)).apply(tone, RATE, np.random.default_rng(0))
    assert fast.size == pytest.approx(RATE / 1.1, abs=1)
    peak = np.fft.rfftfreq(fast.size, 1 / RATE)[np.argmax(np.abs(np.fft.rfft(fast)))]
    assert peak == pytest.approx(1100, abs=2)


def test_channels_band_limit():
    x = noise()
    rng = np.random.default_rng(0)
    eight = dataclasses.replace(CLEAN, channels=(0.0, 0.0, 1.0)).apply(x, RATE, rng)
    phone = dataclasses.replace(CLEAN, channels=(0.0, 1.0, 0.0)).apply(x, RATE, rng)
    for y in (eight, phone):
        assert y.size == x.size
        # The speech band passes; what a telephone or an 8 kHz file cannot carry is gone.
        assert band_power(y, 1000, 3000) == pytest.approx(band_power(x, 1000, 3000), rel=0.1)
    assert band_power(eight, 4400, 8000) < 1e-3 * band_power(x, 4400, 8000)
    assert band_power(phone, 5000, 8000) < 1e-3 * band_power(x, 5000, 8000)
    assert band_power(phone, 20, 100) < 1e-2 * band_power(x, 20, 100)


def test_noise_is_added_at_the_drawn_snr():
    x = noise(seed=1)
    loud = dataclasses.replace(CLEAN, p_noise=1.0, snr_db=(20.0, 20.0), noise_kinds=("pink",))
    y = loud.apply(x, RATE, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
    assert snr == pytest.approx(20, abs=1e-6)
    # Pink noise has equal power per octave: 1-2 kHz and 4-8 kHz within 20%.
    pink = coloured_noise(4 * RATE, "pink", RATE, np.random.default_rng(0))
    assert band_power(pink, 1000, 2000) == pytest.approx(band_power(pink, 4000, 8000), rel=0.2)
    hum = coloured_noise(RATE, "hum", RATE, np.random.default_rng(0))
    assert band_power(hum, 40, 500) > 10 * band_power(hum, 500, 8000)


def test_room_impulse_response_decays_at_its_rt60():
    rt60, drr = 0.4, 6.0
    h = room_impulse_response(RATE, rt60, drr, np.random.default_rng(0))
    assert h[0] == 1.0 and h.size == int(rt60 * RATE)
    assert 10 * np.log10(1 / np.sum(h[1:] ** 2)) == pytest.approx(drr, abs=1e-9)
    # Energy in 20 ms windows falls by 60 dB per rt60 (a straight line in dB, fitted).
    window = int(0.02 * RATE)
    late = h[int(0.03 * RATE) :]
    energy = [np.sum(late[i : i + window] ** 2) for i in range(0, late.size - window, window)]
    times = np.arange(len(energy)) * window / RATE
    slope = np.polyfit(times, 10 * np.log10(energy), 1)[0]
    assert slope == pytest.approx(-60 / rt60, rel=0.15)


@pytest.mark.parametrize(
    "field, value",
    [("speed", (1.2, 1.1)), ("p_room", 1.5), ("channels", (0.5, 0.5, 0.5)),
     ("noise_kinds", ("crowd",)), ("snr_db", (1, 200)), ("rt60", 0.3)],
)  # fmt: skip
def test_bad_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        Acoustics(**{field: value})
