"""Direct terms formed with the trace terms: where a parameter acts on a step's output only
through new state leaves, its direct term rides on the trace's product (no weight gradient per
step), with the numbers of the per-step reverse-mode product."""

import jax
import jax.numpy as jnp
import pytest
from cell_zoo import ALL, BUILTIN, N_IN
from numerics import f64, problem, rel, sq

import snnplast as sp
from snnplast.online import OnlineStep, online_loss_and_grad

B, T = 2, 7


class ReadsWeight(sp.Cell):
    """A leaky layer whose output reads a weight directly (``W_out @ h_t``, no state of its
    own): W_out's direct term cannot be cut by a state leaf; W_in's can (by ``h``)."""

    w_in: jax.Array
    w_out: jax.Array

    def __init__(self, n_in, n, key):
        k1, k2 = jax.random.split(key)
        self.w_in = jax.random.normal(k1, (n, n_in))
        self.w_out = jax.random.normal(k2, (3, n))

    def initial_state(self):
        return jnp.zeros(self.w_in.shape[0])

    def __call__(self, h, x):
        h = 0.8 * h + jnp.tanh(self.w_in @ x)
        return h, self.w_out @ h


def _runner(cell, policy=None):
    return OnlineStep(cell, jnp.zeros(N_IN), policy or sp.Diagonal(), sq)


def test_cuts_follow_the_new_state(getkey):
    net = sp.Sequential([BUILTIN["ralif"](getkey()), sp.LI(4, 3, key=getkey())])
    runner = _runner(net)
    names = runner.state_names
    cuts = {q: [names[a] for a in c] for q, c in runner.direct_cuts().items()}
    # Input and recurrent weights act through the potential, the readout's through its state.
    assert sorted(cuts.values()) == [["layers[0].v"]] * 2 + [["layers[1].state"]] * 2
    # Izhikevich's spike reads the potential before its reset, not the new state leaf.
    assert _runner(ALL["izhikevich"](getkey())).direct_cuts() == {}
    mixed = _runner(ReadsWeight(N_IN, 4, getkey()))
    assert list(mixed.direct_cuts().values()) == [(0,)]  # W_in by h; W_out not cut
    assert len(mixed.graph.phi_nodes) == 2
    # An LSTM's output gate reaches h without crossing c: every path crosses h, the last leaf.
    lstm = _runner(ALL["lstm"](getkey()))
    assert {tuple(lstm.state_names[a] for a in c) for c in lstm.direct_cuts().values()} == {("h",)}
    # A restricted trace is not A G + F: no cut (the per-step product stays).
    assert _runner(BUILTIN["columnar_lateral"](getkey()), sp.ColumnarPolicy()).direct_cuts() == {}


SLOW_CASES = [(n, p) for n in ("sequential", "ralif", "gru", "reads_weight", "lstm",
                                 "resonate_and_fire")
              for p in (sp.Diagonal(), sp.Diagonal(lam=0.7), sp.Exact())]
# ralif's blocks are also checked against an independent reference (test_blocked.py: e-prop
# without recurrence == BPTT); here a cell with a parameter that is not cut. Exact's direct
# terms take the same path, checked against BPTT by default in test_policies.py
# (test_exact_equals_bptt) and against per-step products in the slow run.
FAST_CASES = [("reads_weight", sp.Diagonal(lam=0.7))]


@pytest.mark.parametrize(("name", "policy"), FAST_CASES + [
    pytest.param(n, p, marks=pytest.mark.slow) for n, p in SLOW_CASES
    if not any(n == f and p == q for f, q in FAST_CASES)],
    ids=lambda v: v if isinstance(v, str) else f"{v.name}-{v.lam}")
def test_direct_terms_with_traces_equal_per_step_products(name, policy, x64, getkey,
                                                          monkeypatch):
    """Step recursion and blocks with the direct terms in the trace's product == the direct
    terms by reverse mode at every step (the cuts switched off), float64."""
    make = (lambda k: ReadsWeight(N_IN, 4, k)) if name == "reads_weight" else ALL[name]
    cell = f64(make(getkey()))
    assert _runner(cell, policy).direct_cuts()  # something is cut
    xs, ys = jax.vmap(lambda k: problem(cell, k, T))(jax.random.split(getkey(), B))
    got = {k: online_loss_and_grad(cell, xs, ys, policy, sq, block=k) for k in (1, 3)}
    monkeypatch.setattr(OnlineStep, "direct_cuts", lambda self: {})
    for k, (loss, grads) in got.items():
        ref_loss, ref = online_loss_and_grad(cell, xs, ys, policy, sq, block=k)
        assert rel(grads, ref) <= 1e-10, (k, rel(grads, ref))
        assert abs(float(loss - ref_loss)) <= 1e-12 * abs(float(ref_loss))


def _sub_jaxprs(e):
    for v in e.params.values():
        for sub in v if isinstance(v, (tuple, list)) else [v]:
            inner = getattr(sub, "jaxpr", None)
            if inner is not None:
                yield getattr(inner, "jaxpr", inner)


def _has_loop(jaxpr) -> bool:
    return any(e.primitive.name in ("scan", "while") or any(map(_has_loop, _sub_jaxprs(e)))
               for e in jaxpr.eqns)


def _dots_in_loops(jaxpr, shape, inside=False) -> int:
    """dot_general equations with output `shape` inside the loops over steps of `jaxpr`: the
    innermost scan/while bodies (a loop over blocks or chunks holds the loop over their steps,
    and the products a block or chunk forms once after its steps)."""
    count = 0
    for e in jaxpr.eqns:
        if inside and e.primitive.name == "dot_general" and e.outvars[0].aval.shape == shape:
            count += 1
        loop = e.primitive.name in ("scan", "while")
        for inner in _sub_jaxprs(e):
            count += _dots_in_loops(inner, shape, not _has_loop(inner) if loop else inside)
    return count


@pytest.mark.parametrize("block", [1, 4])
def test_no_weight_gradient_per_step(block, x64, getkey):
    """The cut parameters get no weight-shaped product inside the time loops (the direct term
    is in the trace's product); with the cuts switched off they do."""
    net = f64(sp.Sequential([BUILTIN["rlif"](getkey()), sp.LI(4, 3, key=getkey())]))
    xs, ys = jax.vmap(lambda k: problem(net, k, 8))(jax.random.split(getkey(), B))
    w_in = net.layers[0].w_in.shape

    def count():
        jaxpr = jax.make_jaxpr(lambda c: online_loss_and_grad(c, xs, ys, sp.Diagonal(), sq,
                                                              block=block))(net)
        return _dots_in_loops(jaxpr.jaxpr, w_in)

    merged = count()
    cuts = OnlineStep.direct_cuts
    try:
        OnlineStep.direct_cuts = lambda self: {}
        unmerged = count()
    finally:
        OnlineStep.direct_cuts = cuts
    # Off: the per-step reverse-mode product of W_in (in the loop over a block's steps, or
    # the step recursion's). On: only the trace's contraction, which is never in the loop over
    # steps (blocks and chunks of the step recursion contract after their steps; the second
    # block of 4 runs in the loop over blocks).
    assert merged == 0 and unmerged >= 1
