"""Master-User with an online LMS readout: the meta-gradient of Javed et al. (2023), section 5."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._cell import initial_state_parameters
from ..engine import SJac, compose, materialize
from ..policies import ColumnarPolicy
from ._online_step import OnlineStep


def _per_parameter(trace: SJac, weights) -> jax.Array:
    """``sum_i weights_i * G[i, p]``: for a column-tied trace, ``weights_{col(p)} dh_{col(p)}/dp``
    laid out like the parameter."""
    row = SJac((), trace.out_shape, frozenset(), weights, ((None, 0),), False)
    return materialize(compose(row, trace))


def master_user_lms(cell, inputs, targets, *, alpha: float, w0=None, meta: bool = True):
    r"""Online prediction ``y_t = w_t . h_t`` with ``w`` learned by LMS while the columnar cell's
    parameters get Master-User gradients through the LMS updates.

    With ``delta_t = y*_t - y_t`` and the per-step loss ``delta_t^2 / 2``:

    $$w_{t+1} = w_t + \alpha\,\delta_t h_t, \qquad
      \frac{\partial L_t}{\partial\theta_i} \approx -\delta_t\big(w_i\,\partial h_i/\partial\theta_i
      + h_i\,TW_i\big)$$
    $$TW_i \leftarrow TW_i + \alpha\,\delta_t\,\partial h_i/\partial\theta_i
      - \alpha h_i\big(w_i\,\partial h_i/\partial\theta_i + h_i\,TW_i\big)$$

    where ``dh_i/dtheta_i`` is the :class:`~snnplast.policies.ColumnarPolicy` trace (each parameter
    tracks its own column's state) and ``TW_i = dw_i/dtheta_i`` the extra trace of the paper's
    equations 17-20. ``meta=False`` drops the path through the LMS updates (``TW = 0``).

    **Arguments:**

    - `cell`: a columnar cell whose state is ``h [n]`` and whose parameters are indexed by column
      along their leading axis (:class:`snnplast.Columnar`).
    - `inputs` ``[T, n_in]``, `targets` ``[T]``; `alpha`: the LMS step size; `w0` ``[n]`` the
      initial readout (zeros by default).

    **Returns:** ``(grads, predictions [T], w_T)``; ``grads`` shaped like the cell.
    """
    learned = initial_state_parameters(cell)
    if learned:
        raise ValueError(f"master_user_lms needs a fixed initial state; {type(cell).__name__}'s "
                         f"depends on the trainable parameter {learned[0]} (use "
                         f"snnplast.gradients with ColumnarPolicy, which trains it)")
    runner = OnlineStep(cell, inputs[0], ColumnarPolicy(), lambda o, y: jnp.sum(o))
    g = runner.graph
    if len(g.s_shapes) != 1 or len(g.s_shapes[0]) != 1:
        raise ValueError(f"master_user_lms needs a cell whose state is one vector h [n], got "
                         f"state shapes {g.s_shapes}")
    n = g.s_shapes[0][0]
    for q, shape in enumerate(runner.context.phi_shapes):
        if not shape or shape[0] != n:
            raise ValueError(f"parameter {q} has shape {shape}: Master-User needs every "
                             f"parameter indexed by column (leading axis of size {n})")
    p = g.split(cell)
    dtype = runner.dtype
    w = jnp.zeros(n, dtype) if w0 is None else jnp.asarray(w0, dtype)
    state = jax.tree_util.tree_leaves(cell.initial_state())
    traces = runner.traces.zeros(dtype)
    phi_shapes = runner.context.phi_shapes
    tw = [jnp.zeros(s, dtype) for s in phi_shapes]
    grad_phi = [jnp.zeros(s, dtype) for s in phi_shapes]
    ctx = runner.context

    def step(carry, inp):
        state, traces, tw, grad_phi, w = carry
        x_t, y_t = inp
        new_state, H, F, K = runner.traces.blocks(p, state, [x_t])
        traces = runner.traces.update(traces, runner.traces.carried(H, K, ctx), F)
        h = new_state[0]
        y = w @ h
        delta = y_t - y
        new_tw, new_grad = [], []
        for q, shape in enumerate(phi_shapes):
            tr = traces.get((0, q))
            dh = _per_parameter(tr, jnp.ones(n, dtype)) if tr is not None else jnp.zeros(shape)
            wdh = _per_parameter(tr, w) if tr is not None else jnp.zeros(shape)
            hcol = h.reshape((n,) + (1,) * (len(shape) - 1))
            through_w = hcol * tw[q] if meta else 0.0
            new_grad.append(grad_phi[q] - delta * (wdh + through_w))
            if meta:
                new_tw.append(tw[q] + alpha * delta * dh - alpha * hcol * (wdh + hcol * tw[q]))
            else:
                new_tw.append(tw[q])
        w = w + alpha * delta * h
        return (new_state, traces, new_tw, new_grad, w), y

    (state, traces, tw, grad_phi, w), preds = jax.lax.scan(
        step, (state, traces, tw, grad_phi, w), (inputs, targets))
    grads = g.phi_pullback(p, grad_phi)
    return runner.as_tree(grads), preds, w
