"""Weight initialisers and structural masks shared by the built-in cells."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def uniform_fan_in(key, shape, fan_in: int, gain: float = 1.0, dtype=jnp.float32):
    """U(-gain/sqrt(fan_in), gain/sqrt(fan_in)): PyTorch's default for linear and recurrent layers."""
    bound = gain / jnp.sqrt(jnp.asarray(max(fan_in, 1), dtype))
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def off_diagonal(w):
    """``w`` with its diagonal set to zero, written so the mask is a constant of the step."""
    n = w.shape[0]
    return w * (1.0 - jnp.eye(n, dtype=w.dtype))


def check_positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_unit_interval(name: str, value, *, closed_right: bool = False) -> float:
    ok = 0.0 <= value <= 1.0 if closed_right else 0.0 <= value < 1.0
    if not ok:
        allowed = "[0, 1]" if closed_right else "[0, 1)"
        raise ValueError(f"{name} must lie in {allowed}, got {value!r}")
    return float(value)
