"""Cosine between a policy's per-step gradient and the exact one, over time."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._cell import Cell
from .._rollout import check_sequence
from ..online import OnlineStep
from ..policies import Exact, Policy


class Alignment(NamedTuple):
    """Per-step agreement of a policy's gradient with a reference's (arrays ``[T]``).

    - `cosine`: cosine between the two gradients of the loss at step ``t`` alone (NaN where
      either is zero);
    - `norm_ratio`: ``|g_policy| / |g_reference|`` at step ``t``;
    - `cumulative_cosine`: cosine between the gradients of ``sum_{s <= t} loss_s``, what an
      update after ``t`` steps would use.
    """

    cosine: np.ndarray
    norm_ratio: np.ndarray
    cumulative_cosine: np.ndarray


def _cos(a, b):
    na, nb = jnp.linalg.norm(a), jnp.linalg.norm(b)
    return jnp.where((na > 0) & (nb > 0), jnp.vdot(a, b) / (na * nb), jnp.nan)


def gradient_alignment(model: Cell, inputs, targets, policy: Policy, loss, *,
                       reference: Policy | None = None, key=None) -> Alignment:
    """Run `policy` and `reference` side by side over one sequence and compare their gradients
    at every step.

    Both run on the same (fixed) model and inputs; the per-step gradient of a policy is the
    growth of its accumulated gradient over that step, over all trainable arrays flattened.

    **Arguments:**

    - `model`: a :class:`snnplast.Cell`; `inputs` ``[T, ...]``, `targets` ``[T, ...]``.
    - `policy`: the transport policy to check; `loss`: ``loss(output_t, target_t) -> scalar``.
    - `reference`: default :class:`snnplast.Exact` (equal to BPTT: every step's gradient is the
      exact ``d loss_t / d theta`` through the whole past).
    - `key`: PRNG key of random policies (the same per-step keys as ``snnplast.gradients``).

    **Returns:** an :class:`Alignment` of numpy arrays ``[T]``.
    """
    if not isinstance(model, Cell):
        raise TypeError(f"model must be a snnplast.Cell, got {type(model).__name__}")
    if not isinstance(policy, Policy):
        raise TypeError(f"policy must be a transport policy such as snnplast.Diagonal(), "
                        f"got {policy!r}")
    reference = Exact() if reference is None else reference
    if not isinstance(reference, Policy):
        raise TypeError(f"reference must be a transport policy, got {reference!r}")
    check_sequence(inputs, targets)
    key = jax.random.PRNGKey(0) if key is None else key
    x0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[0], inputs)
    runners = [OnlineStep(model, x0, pol, loss) for pol in (policy, reference)]
    p = runners[0].graph.split(model)
    carries = [r.init(model, 1, key) for r in runners]
    flat = lambda leaves: jnp.concatenate([jnp.ravel(g) for g in leaves])
    prev = [flat(r.gradients(p, c)) for r, c in zip(runners, carries)]
    seq = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[:, None], (inputs, targets))

    def body(c, xy):
        carries, prev = c
        x_t, y_t = xy
        step_key = jax.random.fold_in(key, carries[0].t)
        carries = [r.step(p, cr, x_t, y_t, step_key) for r, cr in zip(runners, carries)]
        now = [flat(r.gradients(p, cr)) for r, cr in zip(runners, carries)]
        step = [a - b for a, b in zip(now, prev)]
        ratio = jnp.linalg.norm(step[0]) / jnp.linalg.norm(step[1])
        return (carries, now), (_cos(*step), ratio, _cos(*now))

    _, (cos, ratio, cum) = jax.jit(lambda c, s: jax.lax.scan(body, c, s))((carries, prev), seq)
    return Alignment(np.asarray(cos), np.asarray(ratio), np.asarray(cum))
