"""A chunk's learning signals formed after its steps, in one product (LateSignal): the numbers of
the signal formed at each step, in the step recursion and in blocks, for built-in and user cells;
and the parameters' residuals are not recorded per step."""

import jax
import jax.numpy as jnp
import pytest
from cell_zoo import BUILTIN, N_IN
from numerics import f64, problem, rel, sq
from user_cells import USER_CELLS

import snnplast as sp
from snnplast.online import (
    BlockedStep,
    LateSignal,
    OnlineStep,
    deferred_pairs,
    online_loss_and_grad,
)

B, T = 2, 11


def _net(cell, key):
    return f64(sp.Sequential([cell, sp.LI(4, 3, key=key)]))


def _grads(net, xs, ys, **kw):
    return jax.jit(lambda m: online_loss_and_grad(m, xs, ys, sp.Diagonal(), sq, **kw))(net)


CELLS = {
    "rlif": lambda key: BUILTIN["rlif"](key),
    "ralif": lambda key: BUILTIN["ralif"](key),
    "resonate_and_fire": lambda key: USER_CELLS["resonate_and_fire"](key, N_IN, 4),
    "eqx_gru": lambda key: USER_CELLS["eqx_gru"](key, N_IN, 4),
}


MODES = {"steps": {"block": 1, "contract_every": 4}, "blocks3": {"block": 3},
         "whole-recomputed": {"block": T, "recompute": 4},
         "whole-kept": {"block": T + 5, "recompute": 0}}
# One case per mode by default (rlif is the cell whose step recursion signals late); every
# cell in every mode in the slow set.
FAST = {("rlif", "steps"), ("ralif", "blocks3"), ("resonate_and_fire", "whole-recomputed"),
        ("rlif", "whole-kept")}
CASES = [pytest.param(name, mode, marks=() if (name, mode) in FAST else pytest.mark.slow)
         for name in sorted(CELLS) for mode in MODES]


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_late_equals_per_step(name, mode, x64, getkey, monkeypatch):
    kw = MODES[mode]
    net = _net(CELLS[name](getkey()), getkey())
    xs, ys = jax.vmap(lambda k: problem(net, k, T))(jax.random.split(getkey(), B))
    runner = OnlineStep(net, xs[0, 0], sp.Diagonal(), sq)
    if kw["block"] == 1 and not LateSignal.applies(runner, deferred_pairs(runner)):
        pytest.skip(f"{name}: some trace is contracted at every step (no late signal)")
    if kw["block"] > 1:
        late = BlockedStep(runner, late=True).late
        assert (late is not None) == LateSignal.possible(runner)
        if late is None:
            pytest.skip(f"{name}: some parameter's direct term is not cut (no late signal)")
    loss0, g0 = _grads(net, xs, ys, late=False, **kw)
    # The late path must be the one taken: count its chunks' signals while tracing.
    used = []
    signals = LateSignal.signals

    def counted(self, *args):
        used.append(1)
        return signals(self, *args)

    monkeypatch.setattr(LateSignal, "signals", counted)
    loss1, g1 = _grads(net, xs, ys, late=True, **kw)
    assert used
    assert abs(float(loss0 - loss1)) <= 1e-12 * abs(float(loss0))
    assert rel(g1, g0) <= 1e-10
    # The per-step signal itself is exact (against BPTT elsewhere); here it must not be zero.
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree_util.tree_leaves(g0)) > 0


def test_parameters_are_not_recorded(getkey):
    """The residuals a step keeps depend on its state and input; the weights are left out."""
    net = sp.Sequential([sp.LIF(N_IN, 6, key=getkey(), recurrent=True),
                         sp.LI(6, 3, key=getkey())])
    runner = OnlineStep(net, jnp.zeros(N_IN), sp.Diagonal(), sq)
    late = LateSignal(runner)
    p = runner.graph.split(net)
    carry = runner.init(net, B, jax.random.PRNGKey(0))
    x = jnp.ones((B, N_IN))
    y = jnp.zeros((B, 3))
    _, _, _, residuals = late.forward(p, runner.graph.phi_of(p), carry.state, x, y)
    shapes = {r.shape for r in residuals}
    assert residuals and all(s[:1] == (B,) for s in shapes), shapes
    assert (6, 6) not in shapes and (3, 6) not in shapes
