"""The floating-point type of a step's state, which its Jacobians and traces are kept in."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def is_float(dtype) -> bool:
    """Whether values of `dtype` carry derivatives (floating or complex)."""
    return jnp.issubdtype(dtype, jnp.inexact)


def state_dtype(leaves) -> jnp.dtype:
    """The dtype of the Jacobians, traces and signals of a state with these leaves.

    Only the floating-point leaves count: an integer or boolean leaf (a refractory counter, a
    step count, a flag) has no derivative, so it is carried but never traced and sets no dtype.

    **Arguments:** `leaves`: the state's leaves (arrays or shape-dtype structs).

    **Returns:** the result type of the floating-point leaves; float32 when there is none.
    """
    # A leaf's own dtype first: jnp.result_type refuses a typed PRNG key (a stochastic
    # neuron's key carried in the state).
    dtypes = [a.dtype if hasattr(a, "dtype") else jnp.result_type(a) for a in leaves]
    floats = [jnp.dtype(d) for d in dtypes if is_float(d)]
    if not floats:
        return jnp.dtype(jnp.float32)
    # Leaves of different precisions are the user's choice, not a promotion error.
    with jax.numpy_dtype_promotion("standard"):
        return jnp.dtype(jnp.result_type(*floats))
