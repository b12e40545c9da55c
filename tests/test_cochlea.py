"""The vectorised Lauscher cochlea: each stage against an independent reference, then the chain.

The slow test compares with the ``lauscher`` package itself (an extra: ``pip install
'snnplast[lauscher]'``); everything else runs without it.
"""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnplast.data import BasilarMembrane, BushyCell, Cochlea, HairCell, cochlea, cochlea_batch
from snnplast.data._cochlea.basilar_membrane import (
    fast_length,
    frequency_grid,
    membrane_velocity,
    output_rate,
)
from snnplast.data._cochlea.bushy_cell import binomial_by_inversion
from snnplast.data._cochlea.cochlea import preprocess

RATE = 16000


def vowel(seconds=0.12, f0=140.0, rate=RATE, seed=0):
    """A voiced, vowel-like test sound: harmonics of f0 under two formant peaks, plus a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    x = np.zeros_like(t)
    for k in range(1, int(4000 / f0)):
        f = k * f0
        gain = np.exp(-(((f - 700) / 200) ** 2)) + 0.5 * np.exp(-(((f - 1200) / 250) ** 2))
        x += (gain + 0.02) * np.sin(2 * np.pi * f * t + k)
    return x + 0.01 * np.random.default_rng(seed).standard_normal(t.size)


# ---------------------------------------------------------------------------------------------
# Basilar membrane


# V(omega, c) from lauscher 1.0.1's BasilarMembrane._v at f = 100, 1000, 4000, 10000 Hz.
LAUSCHER_V = {
    0.0: [0.0163185589 + 0.0308076661j, 1.1184240118 + 0.7018821018j,
          6.8844132614 + 1.5793955964j, 21.612721798 + 3.6257835777j],
    1.0: [0.0933646163 + 0.4426621587j, -7.7323845067 + 11.5100083199j,
          35.4183856572 + 80.0859816071j, 0.0006974594 - 6.86361e-05j],
    2.5: [-16.3034728155 - 0.561759479j, -0.0009784086 - 0.0027379637j, 0j, 0j],
    3.5: [164.3949136382 - 150.5213533758j, 0j, 0j, 0j],
}  # fmt: skip


def test_transfer_matches_lauscher_values():
    omega = 2 * np.pi * np.array([100.0, 1000.0, 4000.0, 10000.0])
    for c, want in LAUSCHER_V.items():
        got = BasilarMembrane().transfer(omega, [c])[0]
        want = np.array(want)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-7 * np.abs(want).max() + 1e-8)


def test_transfer_place_map():
    membrane = BasilarMembrane()
    f = np.linspace(20.0, 24000.0, 12000)
    idx = np.arange(50, 700, 50)
    gain = np.abs(membrane.transfer(2 * np.pi * f, membrane.positions[idx]))
    peak = f[gain.argmax(axis=1)]
    # Base to apex, high to low; a damped resonance peaks a little below sqrt(s/m).
    assert np.all(np.diff(peak) < 0)
    ratio = peak / membrane.characteristic_frequencies()[idx]
    assert np.all((ratio > 0.85) & (ratio < 1.0)), ratio


def test_membrane_velocity_is_the_documented_transform():
    x = preprocess(vowel(0.05))
    u = membrane_velocity(x, RATE)
    m = x.size // 2 + 1
    assert u.shape == (m, 700) and u.dtype == np.float32
    assert output_rate(RATE) == RATE // 2
    # Direct evaluation of the formula for a few channels, in float64.
    channels = [0, 300, 699]
    membrane = BasilarMembrane()
    v = membrane.transfer(frequency_grid(x.size, RATE), membrane.positions[channels])
    spectrum = np.fft.fft(x)[:m]
    want = np.real(np.fft.ifft(v * spectrum, n=m, axis=1)).T
    scale = np.abs(want).max(axis=0)
    np.testing.assert_allclose(u[:, channels], want, atol=2e-6 * scale.max())


def test_fast_length():
    for n in (9720, 9721, 16, 17, 22050):
        m = fast_length(n)
        assert m >= n
        bins = m // 2 + 1
        for p in (2, 3, 5, 7, 11):
            while bins % p == 0:
                bins //= p
        assert bins == 1


def test_preprocess_normalises_and_windows():
    x = preprocess(np.ones(101) * 5)
    assert x[0] == 0.0 and x[-1] == 0.0
    assert x[50] == pytest.approx(0.3)  # the odd middle sample is left unwindowed
    np.testing.assert_allclose(x, x[::-1])


# ---------------------------------------------------------------------------------------------
# Hair cell


def meddis_loop(u, rate):
    """Meddis's recursion as plain float64 Python, from the equations in the docstring."""
    hc = HairCell()
    dt = 1.0 / rate
    k0 = hc.g * hc.a / (hc.a + hc.b)
    c = hc.m * hc.y * k0 / (hc.l * k0 + hc.y * (hc.l + hc.r))
    q, w = c * (hc.l + hc.r) / k0, c * hc.r / hc.x
    out = []
    for ut in u:
        k = hc.g * (ut + hc.a) / (ut + hc.a + hc.b) if ut + hc.a > 0 else 0.0
        dq = (hc.y * (hc.m - q) if q < hc.m else 0.0) + hc.x * w - k * q
        dc = k * q - (hc.l + hc.r) * c
        dw = hc.r * c - hc.x * w
        q, c, w = max(q + dt * dq, 0.0), max(c + dt * dc, 0.0), max(w + dt * dw, 0.0)
        out.append(hc.h * dt * c)
    return np.array(out)


def test_hair_cell_matches_explicit_loop(x64):
    rng = np.random.default_rng(0)
    u = np.concatenate([np.zeros(50), 40 * rng.standard_normal(400), -30 * np.ones(50)])
    hc = HairCell()

    def step(state, ut):
        return hc.step(state, ut, 8000)

    state = hc.rest((), jnp.float64)
    _, p = jax.lax.scan(step, state, jnp.asarray(u))
    np.testing.assert_allclose(np.asarray(p), meddis_loop(u, 8000), rtol=1e-9, atol=1e-15)


def test_hair_cell_rest_is_a_fixed_point():
    hc = HairCell()
    state = hc.rest((3,))
    new, p = hc.step(state, jnp.zeros(3), 11025)
    for a, b in zip(state, new):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    np.testing.assert_allclose(p, hc.h / 11025 * state.c, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Bushy cell


@pytest.mark.parametrize(
    "n,p", [(40, 0.006), (40, 0.07), (13, 0.3), (40, 0.5), (40, 0.8), (7, 1.0), (0, 0.3), (40, 0.0)]
)
def test_binomial_by_inversion(n, p):
    size = 40000
    u = jax.random.uniform(jax.random.key(n + int(1000 * p)), (size,))
    k = np.asarray(
        jax.jit(binomial_by_inversion)(
            jnp.full(size, n, jnp.int32), jnp.full(size, p, jnp.float32), u
        )
    )
    assert k.min() >= 0 and k.max() <= n
    mean, var = n * p, n * p * (1 - p)
    assert abs(k.mean() - mean) <= 5 * np.sqrt(var / size) + 1e-9
    assert abs(k.var() - var) <= 0.05 * var + 1e-9


def fibre_loop(p, uniforms, rate):
    """Lauscher's bushy cell as plain Python: n Bernoulli fibres with dead time, then the LIF.

    `uniforms` is ``[T, n]``, one uniform per fibre and sample.
    """
    cell = BushyCell()
    dead = cell.tau_refrac * rate
    last = np.full(cell.n_inputs, -dead)
    counts = []
    for t, pt in enumerate(p):
        fire = (uniforms[t] < pt) & (t - last >= dead)
        last[fire] = t
        counts.append(fire.sum())
    dt = 1.0 / rate
    v, current, silent, spikes = 0.0, 0.0, 0, []
    for t, s in enumerate(counts):
        if t > 0:
            if silent <= 0:
                if v < 1.0:
                    v *= np.exp(-dt / cell.tau_mem)
                else:
                    silent, v = dead, 0.0
                    spikes.append(t - 1)
            else:
                v = 0.0
            current *= np.exp(-dt / cell.tau_syn)
        current += s
        if silent <= 0:
            v += current * cell.weight / cell.n_inputs * dt
        v = min(v, 1.0)
        silent -= 1
    return np.array(counts), np.array(spikes, dtype=int)


def run_bushy(p, rate, seed=0):
    """The vectorised bushy cell over ``p [T, channels]``."""
    cell = BushyCell()
    u = jax.random.uniform(jax.random.key(seed), p.shape)

    def step(state, inputs):
        return cell.step(state, *inputs, rate)

    _, fired = jax.lax.scan(step, cell.init(p.shape[1:], rate), (jnp.asarray(p), u))
    return np.asarray(fired)


def test_bushy_cell_certain_firing_matches_fibre_loop():
    # With p = 1 every ready fibre fires, so both implementations are deterministic.
    rate, steps = 11025, 300
    p = np.ones((steps, 1), np.float32)
    p[100:] = 0.0
    fired = run_bushy(p, rate)[:, 0]
    _, spikes = fibre_loop(p[:, 0], np.zeros((steps, 40)), rate)
    assert spikes.size > 3
    np.testing.assert_array_equal(np.flatnonzero(fired) - 1, spikes)


def test_bushy_cell_statistics_match_fibre_loop():
    rate, steps, channels = 11025, 400, 256
    t = np.arange(steps)
    # A stimulus that switches on and off: the ready-fibre bookkeeping matters at the onsets.
    p_t = np.where((t // 100) % 2 == 1, 0.05, 0.004).astype(np.float32)
    fired = run_bushy(np.repeat(p_t[:, None], channels, 1), rate)
    rng = np.random.default_rng(1)
    theirs = [fibre_loop(p_t, rng.random((steps, 40)), rate)[1] for _ in range(channels)]
    # Same rate over time: spike counts per 50-sample bin, summed over channels, agree within
    # Poisson noise (the onsets, where the ready-fibre bookkeeping matters, included).
    ours_t = np.bincount((np.nonzero(fired)[0] - 1) // 50, minlength=8)
    theirs_t = np.bincount(np.concatenate(theirs) // 50, minlength=8)
    assert theirs_t.sum() > 500
    assert np.all(np.abs(ours_t - theirs_t) <= 5 * np.sqrt(ours_t + theirs_t) + 5), (
        ours_t,
        theirs_t,
    )


# ---------------------------------------------------------------------------------------------
# The whole chain


def test_cochlea_spikes_are_well_formed():
    x = vowel()
    s = cochlea(x, RATE, seed=3)
    rate = output_rate(RATE)
    assert s.times.dtype == np.float64 and s.units.dtype == np.uint16
    assert s.times.size > 100 and s.units.max() < 700
    assert np.all(np.diff(s.times) >= 0)
    steps = s.times * rate
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)
    # Lauscher never reports a spike in the last sample of the membrane's output.
    assert steps.max() < x.size // 2
    # Speech formants at 0.7 and 1.2 kHz drive the apical (low-frequency) half hardest.
    counts = np.bincount(s.units, minlength=700)
    assert counts[350:].sum() > 3 * counts[:350].sum()


def test_cochlea_is_deterministic_and_batch_independent():
    a, b = vowel(seed=1), vowel(0.09, f0=220, seed=2)
    alone = cochlea(a, RATE, seed=7)
    again = cochlea(a, RATE, seed=7)
    together = cochlea_batch([b, a], RATE, seeds=[8, 7], batch_size=2)
    other = cochlea(a, RATE, seed=8)
    for got in (again, together[1]):
        np.testing.assert_array_equal(got.times, alone.times)
        np.testing.assert_array_equal(got.units, alone.units)
    assert not np.array_equal(other.units, alone.units)
    assert abs(other.times.size - alone.times.size) < 0.1 * alone.times.size


def test_cochlea_workers_give_the_same_spikes(capfd):
    clips = [vowel(0.05, f0=100 + 20 * i, seed=i) for i in range(4)]
    here = cochlea_batch(clips, RATE, seeds=range(4), batch_size=2)
    capfd.readouterr()
    there = cochlea_batch(clips, RATE, seeds=range(4), batch_size=2, workers=2)
    for a, b in zip(here, there):
        np.testing.assert_array_equal(a.times, b.times)
        np.testing.assert_array_equal(a.units, b.units)
    # The workers (which share this process's stderr) start cleanly: no warnings.
    assert "Warning" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "audio,rate,error",
    [
        (np.zeros((100, 2)), RATE, "1-D"),
        (np.zeros(1000), RATE, "silent"),
        (np.ones(5), RATE, "at least"),
        (np.array([0.0, np.nan] * 20), RATE, "NaN"),
        (np.ones(100), 44100.0, "int"),
        (np.ones(100), 100, "1000..384000"),
    ],
)
def test_cochlea_rejects_bad_input(audio, rate, error):
    with pytest.raises((ValueError, TypeError), match=error):
        cochlea(audio, rate)


def test_cochlea_parameters_are_hashable_values():
    assert Cochlea() == Cochlea() and hash(Cochlea()) == hash(Cochlea())
    with pytest.raises(TypeError):
        BasilarMembrane(n_channels=700.0)


# ---------------------------------------------------------------------------------------------
# Against lauscher itself


def speech_or_vowel(rate):
    """A 0.45 s "seven" from eSpeak NG when installed, else a vowel of the same length."""
    try:
        from snnplast.data._speech.espeak import Espeak, SpeechUnavailableError

        with Espeak() as engine:
            x = engine.synthesize("seven", "en+m3")
        from scipy.signal import resample_poly

        return resample_poly(x.astype(np.float64), rate, engine.sample_rate)
    except (ImportError, SpeechUnavailableError):
        return vowel(0.45, rate=rate)


# Lauscher's deterministic stages once, then its bushy cell under 8 seeds, in a fresh process:
# lauscher forks a process pool, which must not happen in a process where JAX runs threads.
_LAUSCHER_COUNTS = """
import sys, numpy as np
from lauscher.audiowaves import MonoAudioWave
from lauscher.firing_probability import FiringProbability
from lauscher.transformations import BasilarMembrane, BushyCell, HairCell, HanningWindow, RmsNormalizer
x = np.load(sys.argv[1]); rate = int(sys.argv[2])
wave = MonoAudioWave(x.copy(), rate).transform(RmsNormalizer(0.3)).transform(HanningWindow())
probability = wave.transform(BasilarMembrane()).transform(HairCell())
counts = []
for seed in range(8):
    np.random.seed(seed)
    spikes = probability.transform(BushyCell())
    counts.append(np.bincount(spikes.spike_labels.astype(int), minlength=700))
np.save(sys.argv[3], np.array(counts))
"""


@pytest.mark.slow
def test_statistically_equivalent_to_lauscher(tmp_path):
    """Per-channel spike counts averaged over 8 seeds on each side: correlation >= 0.95, total
    count within 5% (two single Lauscher runs correlate at about 0.91)."""
    pytest.importorskip("lauscher")
    rate = 16000
    clips = {"speech": speech_or_vowel(rate)[: int(0.3 * rate)], "vowel": vowel(0.2, rate=rate)}
    for name, x in clips.items():
        np.save(tmp_path / "x.npy", x)
        subprocess.run(
            [sys.executable, "-c", _LAUSCHER_COUNTS, str(tmp_path / "x.npy"), str(rate),
             str(tmp_path / "counts.npy")],
            check=True,
        )  # fmt: skip
        theirs = np.load(tmp_path / "counts.npy").mean(0)
        ours = np.mean(
            [
                np.bincount(s.units, minlength=700)
                for s in cochlea_batch([x] * 8, rate, seeds=range(100, 108))
            ],
            axis=0,
        )
        corr = np.corrcoef(theirs, ours)[0, 1]
        ratio = ours.sum() / theirs.sum()
        print(f"{name}: correlation {corr:.4f}, total count ratio {ratio:.4f}")
        assert corr >= 0.95, (name, corr)
        assert abs(ratio - 1) <= 0.05, (name, ratio)
