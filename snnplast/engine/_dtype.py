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


def _floating(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.floating)


def cast_floats(tree, dtype):
    """`tree` with every real floating-point leaf in `dtype` (integer, boolean, complex and key
    leaves, token ids among them, unchanged)."""
    def cast(a):
        d = getattr(a, "dtype", None)
        if d is None or not _floating(d) or d == dtype:
            return a
        if isinstance(a, jax.ShapeDtypeStruct):
            return jax.ShapeDtypeStruct(a.shape, dtype)
        return jnp.asarray(a, dtype)

    return jax.tree_util.tree_map(cast, tree)


def state_changes(step, state, x) -> list | None:
    """``[(leaf, dtype before, dtype after)]`` for the floating state leaves whose dtype one
    ``step(state, x)`` changes (a weakly typed leaf, a Python float, takes any); ``None`` when
    the step cannot be traced on these values (its own error is for the caller to report)."""
    try:
        before, (after, _) = jax.eval_shape(lambda: (state, step(state, x)))
    except (TypeError, ValueError):
        return None
    b_leaves, a_leaves = jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after)
    return [(k, b.dtype, a.dtype) for k, (b, a) in enumerate(zip(b_leaves, a_leaves))
            if _floating(b.dtype) and not b.weak_type and a.dtype != b.dtype]


def input_dtype(step, state, x):
    """The dtype that `x`'s floating leaves must be cast to for ``step(state, x)`` to keep the
    state's dtypes, or ``None`` when they may stay as they are.

    A float32 model fed float64 inputs with ``jax_enable_x64`` on computes a float64 state from
    them, which no ``lax.scan`` over the steps accepts; without x64, jnp would have made the
    inputs float32 to begin with. So inputs are cast to the state's dtype exactly when that is
    what keeps the state's dtype, and left alone otherwise (a float64 model reads float32
    inputs as they are; a mixed-precision step that casts its own inputs is not touched).

    **Arguments:** `step`: ``step(state, x) -> (new_state, output)``; `state`, `x`: one step's
    values (arrays or shape-dtype structs).
    """
    changes = state_changes(step, state, x)
    if changes == []:
        return None
    dtype = state_dtype(jax.tree_util.tree_leaves(state))
    cast = cast_floats(x, dtype)
    if all(a is b for a, b in zip(jax.tree_util.tree_leaves(cast), jax.tree_util.tree_leaves(x))):
        return None  # nothing to cast: the step itself changes the state's dtype
    return dtype if state_changes(step, state, cast) == [] else None
