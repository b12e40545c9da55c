"""The divergence guard: a training step that only applies finite updates, and its report.

Inside the compiled step, the loss and every gradient leaf are tested for NaN and Inf. An
online method's traces feed the gradient by products and sums (``G_t`` times the learning
signal), so a non-finite trace reaches the gradient leaf it belongs to (``0 * nan`` is
``nan``), and the test catches it there, without the traces leaving the step. When any test
fails, the step returns the model and optimiser state it was given, unchanged; the host then
stops the run (``on_nan="stop"``) or counts the skipped batch (``on_nan="skip"``).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

# What a run does with a batch whose loss or gradient is not finite. Adding a mode means a
# line here and its handling in the trainer's loop.
ON_NAN = ("stop", "skip")


class DivergenceError(FloatingPointError):
    """Training met a non-finite loss or gradient; the run's files keep the last good state."""


def check_on_nan(value) -> str:
    if value not in ON_NAN:
        raise ValueError(f"on_nan must be one of {', '.join(ON_NAN)}, got {value!r}")
    return value


def gradient_leaf_names(grads) -> list[str]:
    """The path in the model (``[0].w_in``) of each array leaf of `grads`, in flattening order."""
    with_paths = jax.tree_util.tree_flatten_with_path(eqx.filter(grads, eqx.is_inexact_array))[0]
    return [jax.tree_util.keystr(path) for path, _ in with_paths]


def finite_flags(loss, grads) -> jax.Array:
    """``[1 + leaves]`` booleans: whether the loss, then each gradient leaf, is all finite."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
    return jnp.stack([jnp.all(jnp.isfinite(loss))] + [jnp.all(jnp.isfinite(g)) for g in leaves])


def keep_if(ok, new, old):
    """`new` where the scalar `ok` holds, else `old`, leaf by array leaf (others from `new`)."""
    new_arrays, static = eqx.partition(new, eqx.is_array)
    old_arrays, _ = eqx.partition(old, eqx.is_array)
    chosen = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new_arrays, old_arrays)
    return eqx.combine(chosen, static)


def describe(flags: np.ndarray, loss: float, leaf_names: list[str]) -> str:
    """What was not finite, from the flags of :func:`finite_flags`: the loss and/or the first
    gradient leaf, by name."""
    parts = []
    if not flags[0]:
        parts.append(f"loss {loss}")
    bad = [name for name, fine in zip(leaf_names, flags[1:]) if not fine]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        parts.append(f"gradient of parameter {bad[0]}{more}")
    return "non-finite " + " and ".join(parts)
