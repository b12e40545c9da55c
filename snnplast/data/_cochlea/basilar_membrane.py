r"""The basilar membrane: Sieroka's hydrodynamic cochlea, evaluated in the frequency domain.

The membrane is a one-dimensional strip along the cochlear position $c \in [0, c_{max}]$ (base to
apex) with stiffness, damping and mass per unit area

$$s(c) = c_0 e^{-\alpha c} - a, \qquad r(c) = r_0 e^{-\alpha c/2},\quad r_0 = d_e\sqrt{c_0 m},
\qquad m,$$

in a fluid of density $\rho$ and channel height $h$ (Sieroka, Dosch and Rupp 2006, "Semirealistic
models of the cochlea", JASA 120(1):297). With the impedance $\xi(\omega, c) = s(c) - m\omega^2 -
i\omega r(c)$ and the local wave number $g(\omega, c) = \omega\sqrt{\rho / (h\,\xi(\omega, c))}$,
the WKB phase integral $\Gamma = \int g$ has the closed form

$$\Gamma(\omega, c) = \frac{2 g(\omega, 0)}{\alpha} - \frac{2 i\omega}{\alpha\sqrt{h}\,b}
\log\frac{\varphi(\omega, 0)}{e^{\alpha c/2}\,\varphi(\omega, c)},\qquad
\varphi(\omega, c) = -\sqrt{\xi(\omega, c)} + i b - \frac{\omega r(c)}{2b},\quad
b = \sqrt{a + m\omega^2},$$

the pressure along the membrane is $P(\omega, c) = \sqrt{\Gamma/g(\omega, c)}\;
H^{(1)}_0(\Gamma(\omega, c))$, the stapes impedance (with $\kappa = \frac{2\omega}{\alpha}
\sqrt{2/(h c_0)}$) is

$$Z(\omega) = \sqrt{\frac{2 c_0}{h}}\;\frac{i J_0(\kappa) + Y_0(\kappa)}{J_1(\kappa) - i Y_1(\kappa)},$$

and the membrane velocity per unit of input is the transfer function

$$V(\omega, c) = \frac{2\omega}{\xi(\omega, c)}\,\frac{P(\omega, c)}{P(\omega, 0)}\,Z(\omega).$$

Each of the $C$ channels sits at $c_k = c_{max}\,k/(C-1)$; channel 0 is the base (highest
characteristic frequency, about 22 kHz), channel $C-1$ the apex (about 110 Hz).

Conventions of the Lauscher implementation (Cramer et al. 2020), which produced the SHD files and
which this module reproduces: for a clip of $N$ samples at rate $f_s$ the spectrum is kept for its
$M = \lfloor N/2\rfloor + 1$ non-negative frequency bins, bin $k$ is assigned the frequency
$\omega_k = 2\pi\,(1 + k\,(f_s' - 1)/(M - 1))$ with $f_s' = \lfloor f_s/2 \rfloor$, and the
response of channel $c$ is the real part of the $M$-point inverse DFT of $V(\omega_k, c)X_k$,
read as a signal sampled at $f_s'$. Every later stage therefore runs at half the audio rate.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os

import numpy as np
import scipy.fft
from scipy import special

from ..._errors import ValidationError, ValidationTypeError

# Where Hankel's asymptotic expansion takes over from SciPy (AMOS), and how many of its terms:
# with |z| >= 12, twelve terms are accurate to 3e-10 relative, at a fifth of AMOS's cost.
_ASYMPTOTIC_FROM = 12.0
_ASYMPTOTIC_TERMS = 12
# exp(-25): how far below its own peak a channel's transfer function is treated as zero.
_NEGLIGIBLE = 25.0


def _hankel1_0(z: np.ndarray) -> np.ndarray:
    r"""$H^{(1)}_0(z)$ for complex $z$ with $\mathrm{Im}\,z \ge 0$.

    For $|z| \ge 12$ Hankel's expansion $H^{(1)}_0(z) \approx \sqrt{2/(\pi z)}\,
    e^{i(z - \pi/4)} \sum_{k<12} i^k a_k / z^k$ with $a_0 = 1$, $a_k = -a_{k-1}(2k-1)^2/(8k)$;
    SciPy elsewhere.
    """
    z = np.asarray(z, np.complex128)
    out = np.empty(z.shape, np.complex128)
    far = np.abs(z) >= _ASYMPTOTIC_FROM
    out[~far] = special.hankel1(0, z[~far])
    zf = z[far]
    step = 1j / zf
    series = np.full(zf.shape, _HANKEL_COEFFS[-1], np.complex128)
    for coeff in _HANKEL_COEFFS[-2::-1]:
        series = series * step + coeff
    out[far] = np.sqrt(2 / (np.pi * zf)) * np.exp(1j * (zf - np.pi / 4)) * series
    return out


def _hankel_coefficients(n: int) -> tuple[float, ...]:
    coeffs = [1.0]
    for k in range(1, n):
        coeffs.append(-coeffs[-1] * (2 * k - 1) ** 2 / (8 * k))
    return tuple(coeffs)


_HANKEL_COEFFS = _hankel_coefficients(_ASYMPTOTIC_TERMS)


@dataclasses.dataclass(frozen=True)
class BasilarMembrane:
    r"""Parameters of the hydrodynamic basilar membrane (defaults: Lauscher's, SI-like units).

    **Arguments:**

    - `n_channels`: number of places $C$ along the membrane (700 for SHD).
    - `a`: stiffness offset $a$.
    - `alpha`: stiffness decay $\alpha$ along the membrane.
    - `rho`: fluid density $\rho$.
    - `c_max`: length of the membrane $c_{max}$ (the position of the last channel).
    - `c0`: base stiffness $c_0$.
    - `de`: damping coefficient $d_e$.
    - `h`: channel height $h$.
    - `m`: membrane mass per area $m$.
    """

    n_channels: int = 700
    a: float = 3500.0
    alpha: float = 3.0
    rho: float = 1.0
    c_max: float = 3.5
    c0: float = 1e9
    de: float = 0.15
    h: float = 0.1
    m: float = 0.05

    def __post_init__(self):
        if isinstance(self.n_channels, bool) or not isinstance(self.n_channels, int):
            raise ValidationTypeError(f"n_channels must be an int >= 2, got {self.n_channels!r}")
        if not 2 <= self.n_channels <= 65536:
            raise ValidationError(f"n_channels must be in 2..65536, got {self.n_channels}")

    @property
    def positions(self) -> np.ndarray:
        """``[C]`` cochlear positions $c_k$ of the channels, base first."""
        return np.linspace(0.0, self.c_max, self.n_channels)

    def characteristic_frequencies(self) -> np.ndarray:
        r"""``[C]`` undamped resonance $\sqrt{s(c)/m}/2\pi$ of each channel in Hz, base first."""
        s = self.c0 * np.exp(-self.alpha * self.positions) - self.a
        return np.sqrt(np.maximum(s, 0.0) / self.m) / (2 * np.pi)

    def transfer(self, omega: np.ndarray, positions: np.ndarray) -> np.ndarray:
        r"""The transfer function $V(\omega, c)$ on a grid.

        **Arguments:**

        - `omega`: ``[K]`` angular frequencies (rad/s), all > 0.
        - `positions`: ``[P]`` membrane positions $c$.

        **Returns:** ``[P, K]`` complex128.
        """
        omega = np.asarray(omega, dtype=np.float64)[None, :]
        c = np.asarray(positions, dtype=np.float64)[:, None]
        a, alpha, m, h = self.a, self.alpha, self.m, self.h
        r0 = self.de * np.sqrt(self.c0 * m)
        b = np.sqrt(a + m * omega**2)

        def parts(c):
            # xi, g and phi at positions `c`, each evaluated once: [P, K] arrays are large.
            decay = np.exp(-alpha * c / 2)
            xi = self.c0 * decay**2 - a - m * omega**2 - 1j * omega * (r0 * decay)
            g = omega * np.sqrt(self.rho / (h * xi))
            phi = -np.sqrt(xi) + 1j * b - omega * (r0 * decay) / (2 * b)
            return xi, g, phi

        _, g_0, phi_0 = parts(np.zeros((1, 1)))
        xi_c, g_c, phi_c = parts(c)

        def phase(phi, c):
            # The logarithm is taken of the quotient, not as a difference of logarithms: the
            # principal branch of the quotient is the one the model's closed form is valid on.
            return 2 * g_0 / alpha - (2j * omega / (alpha * np.sqrt(h) * b)) * np.log(
                phi_0 / (np.exp(alpha * c / 2) * phi)
            )

        gamma_0 = phase(phi_0, 0.0)
        gamma_c = phase(phi_c, c)
        # Past its resonance a channel's wave is evanescent: |P(w, c) / P(w, 0)| falls like
        # exp(-(Im Gamma_c - Im Gamma_0)), below 1e-10 of the channel's peak once that exponent
        # passes _NEGLIGIBLE; those entries are exactly 0 here, which saves a third of the work.
        alive = gamma_c.imag - gamma_0.imag <= _NEGLIGIBLE
        p_c = np.zeros(gamma_c.shape, np.complex128)
        live = gamma_c[alive]
        p_c[alive] = np.sqrt(live / g_c[alive]) * _hankel1_0(live)
        p_0 = np.sqrt(gamma_0 / g_0) * _hankel1_0(gamma_0)

        kappa = 2 * omega / alpha * np.sqrt(2 / (h * self.c0))
        z = np.sqrt(2 * self.c0 / h) * (
            (1j * special.j0(kappa) + special.y0(kappa))
            / (special.j1(kappa) - 1j * special.y1(kappa))
        )
        return (2 * omega * z / p_0) / xi_c * p_c


def output_rate(sample_rate: int) -> int:
    """The rate (Hz) of the membrane's output and every later stage: half the audio rate."""
    return int(sample_rate) // 2


def frequency_grid(n_samples: int, sample_rate: int) -> np.ndarray:
    r"""``[M]`` angular frequencies $\omega_k$ assigned to the kept bins of an `n_samples` clip."""
    n_bins = int(n_samples) // 2 + 1
    return 2 * np.pi * np.linspace(1.0, output_rate(sample_rate), n_bins)


def _threads() -> int:
    # Inside a data worker (see .workers) each process gets one core.
    if os.environ.get("SNNPLAST_WORKER"):
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


@functools.lru_cache(maxsize=2)
def _transfer_matrix(membrane: BasilarMembrane, n_samples: int, sample_rate: int) -> np.ndarray:
    omega = frequency_grid(n_samples, sample_rate)
    positions = membrane.positions
    # Hankel functions dominate (about 1 µs per point); scipy's ufuncs release the GIL, so
    # channel blocks evaluate in parallel threads.
    n_workers = _threads()
    blocks = np.array_split(np.arange(membrane.n_channels), n_workers * 2)
    out = np.empty((membrane.n_channels, omega.size), dtype=np.complex64)

    def fill(idx):
        out[idx] = membrane.transfer(omega, positions[idx])

    with concurrent.futures.ThreadPoolExecutor(n_workers) as pool:
        list(pool.map(fill, blocks))
    out.setflags(write=False)
    return out


def transfer_matrix(membrane: BasilarMembrane, n_samples: int, sample_rate: int) -> np.ndarray:
    r"""$V(\omega_k, c_j)$ for every channel and kept bin of a clip, cached per shape.

    Computing it costs a few CPU seconds for 700 channels and a 0.5 s clip; the last two are
    kept in memory (about 30 MB each), so clips of equal length share it.

    **Arguments:**

    - `membrane`: the model parameters.
    - `n_samples`: clip length $N$ in audio samples.
    - `sample_rate`: audio rate $f_s$ in Hz.

    **Returns:** ``[C, M]`` complex64 (read-only), $M = \lfloor N/2 \rfloor + 1$.
    """
    return _transfer_matrix(membrane, int(n_samples), int(sample_rate))


def membrane_velocity(
    audio: np.ndarray, sample_rate: int, membrane: BasilarMembrane = BasilarMembrane()
) -> np.ndarray:
    r"""Basilar-membrane velocity of every channel for one (normalised, windowed) clip.

    $$u_c[n] = \mathrm{Re}\,\frac{1}{M}\sum_{k=0}^{M-1} V(\omega_k, c)\,X_k\,e^{2\pi i kn/M},
    \qquad X_k = \sum_{j=0}^{N-1} x_j e^{-2\pi i jk/N},$$

    **Arguments:**

    - `audio`: ``[N]`` samples.
    - `sample_rate`: audio rate in Hz.
    - `membrane`: the model parameters.

    **Returns:** ``[M, C]`` float32, time-major, sampled at :func:`output_rate`.
    """
    audio = np.asarray(audio, dtype=np.float64)
    spectrum = scipy.fft.rfft(audio).astype(np.complex64)
    transfer = transfer_matrix(membrane, audio.size, sample_rate)
    velocity = scipy.fft.ifft(transfer * spectrum[None, :], axis=1, workers=_threads()).real
    return np.ascontiguousarray(velocity.T, dtype=np.float32)


def fast_length(n_samples: int) -> int:
    """The least clip length >= `n_samples` whose $M = \\lfloor N/2 \\rfloor + 1$ bins make a fast FFT.

    Lauscher's inverse transform has $M$ points; for a prime $M$ it is several times slower than
    for a product of small primes. Padding clips to these lengths (with silence) keeps it fast.
    """
    n_bins = scipy.fft.next_fast_len(int(n_samples) // 2 + 1, real=False)
    return max(int(n_samples), 2 * (n_bins - 1))
