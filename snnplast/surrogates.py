"""Surrogate spike functions.

Each surrogate is the exact Heaviside step in the forward pass, ``H(x) = 1[x > 0]``, and a
smooth pseudo-derivative in the backward pass, supplied through ``jax.custom_jvp``. The
pseudo-derivative is what every gradient method in snnplast (BPTT and the trace engine alike)
uses, so swapping the surrogate changes learning everywhere at once.

    >>> spike = FastSigmoid(slope=25.0)
    >>> z = spike(v - threshold)
"""

from __future__ import annotations

import abc
import dataclasses
import functools

import jax
import jax.numpy as jnp


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _heaviside(surrogate: Surrogate, x):
    return (x > 0).astype(x.dtype)


@_heaviside.defjvp
def _heaviside_jvp(surrogate, primals, tangents):
    (x,) = primals
    (dx,) = tangents
    return _heaviside(surrogate, x), surrogate.derivative(x) * dx


@dataclasses.dataclass(frozen=True)
class Surrogate(abc.ABC):
    """A Heaviside step whose derivative is replaced by :meth:`derivative`.

    Instances are hashable (they are static data of a cell), so cells that hold one can be
    passed through ``jax.jit`` as static structure.
    """

    slope: float = 25.0

    def __post_init__(self):
        if not (isinstance(self.slope, (int, float)) and self.slope > 0):
            raise ValueError(f"surrogate slope must be a positive number, got {self.slope!r}")

    @abc.abstractmethod
    def derivative(self, x):
        """The pseudo-derivative dH/dx evaluated at ``x``."""

    def __call__(self, x):
        return _heaviside(self, x)


@dataclasses.dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """SuperSpike (Zenke & Ganguli 2018): ``1 / (1 + slope * |x|)^2``."""

    def derivative(self, x):
        return 1.0 / (1.0 + self.slope * jnp.abs(x)) ** 2


SuperSpike = FastSigmoid


@dataclasses.dataclass(frozen=True)
class Triangle(Surrogate):
    """Piecewise linear (Bellec et al. 2018): ``max(0, 1 - slope * |x|)``."""

    slope: float = 1.0

    def derivative(self, x):
        return jnp.maximum(0.0, 1.0 - self.slope * jnp.abs(x))


@dataclasses.dataclass(frozen=True)
class Arctan(Surrogate):
    """Arctangent: ``1 / (1 + (pi * slope * x)^2)``, normalised to peak 1."""

    slope: float = 2.0

    def derivative(self, x):
        return 1.0 / (1.0 + (jnp.pi * self.slope * x) ** 2)


@dataclasses.dataclass(frozen=True)
class Boxcar(Surrogate):
    """Rectangular window: ``1`` where ``|x| < 1 / (2 slope)``, else ``0``."""

    slope: float = 1.0

    def derivative(self, x):
        return (jnp.abs(x) < 0.5 / self.slope).astype(x.dtype)


__all__ = ["Arctan", "Boxcar", "FastSigmoid", "SuperSpike", "Surrogate", "Triangle"]
