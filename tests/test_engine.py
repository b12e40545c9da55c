"""The trace engine: structured Jacobians of one step against JAX's own forward-mode AD, the
inferred block classes, elimination orders, fallbacks and the memory of factored traces."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cell_zoo import ALL, BUILTIN, COVERED, N_IN, SLOW_TO_TRACE

import snnplast as sp
from snnplast.engine import derive


def _cast(tree, dtype):
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree)


def _states(cell, key, dtype):
    """A random state with some potentials exactly at and just around the threshold."""
    state = cell.initial_state()
    leaves, treedef = jax.tree_util.tree_flatten(state)
    keys = jax.random.split(key, len(leaves))
    out = []
    for n, (leaf, k) in enumerate(zip(leaves, keys)):
        v = jnp.asarray(leaf) + jax.random.normal(k, jnp.shape(leaf), dtype)
        if n == 0 and v.ndim == 1 and v.shape[0] >= 3:
            v = v.at[:3].set(jnp.asarray([1.0, 1.0 - 1e-3, 1.0 + 1e-3], dtype))
        out.append(v.astype(dtype))
    return jax.tree_util.tree_unflatten(treedef, out)


def _reference(cell, state, x):
    params, static = eqx.partition(cell, eqx.is_inexact_array)
    p_leaves, p_def = jax.tree_util.tree_flatten(params)
    s_leaves, s_def = jax.tree_util.tree_flatten(state)

    def f(p, s):
        c = eqx.combine(jax.tree_util.tree_unflatten(p_def, p), static)
        new, _ = c(jax.tree_util.tree_unflatten(s_def, s), x)
        return jax.tree_util.tree_leaves(new)

    return jax.jit(jax.jacfwd(f, argnums=(0, 1)))(p_leaves, s_leaves)


@pytest.mark.parametrize("precision, name", [
    pytest.param(p, n, marks=pytest.mark.slow)
    if n in COVERED or n == "linear_attention" or (p == "float32" and n in SLOW_TO_TRACE)
    else (p, n)
    for p in ("float32", "float64") for n in sorted(ALL)])
def test_jacobians_equal_jacfwd(name, precision, getkey, request):
    if precision == "float64":
        request.getfixturevalue("x64")
    dtype = jnp.float32 if precision == "float32" else jnp.float64
    cell = _cast(ALL[name](getkey()), dtype)
    ts = derive(cell, jnp.zeros(N_IN, dtype))
    worst = 0.0
    for trial in range(2):
        state = _states(cell, getkey(), dtype)
        x = jax.random.normal(getkey(), (N_IN,), dtype) * (1.0 + trial)
        H, F = ts.materialize(cell, state, x)
        ref = _reference(cell, state, x)
        for a in range(len(ref)):
            for b, want in enumerate(ref[a][1]):
                scale = max(1.0, float(jnp.max(jnp.abs(want))))
                worst = max(worst, float(jnp.max(jnp.abs(H[(a, b)] - want))) / scale)
            for k, want in enumerate(ref[a][0]):
                scale = max(1.0, float(jnp.max(jnp.abs(want))))
                worst = max(worst, float(jnp.max(jnp.abs(F[(a, k)] - want))) / scale)
    tol = 1e-6 if dtype == jnp.float32 else 1e-12
    assert worst <= tol, f"{name}: max difference {worst:.3g} (relative to max(1, |J|))"


# ----- block classes, as each cell's docstring derives them --------------------------------------
def _derive(name, key):
    cell = BUILTIN[name](key)
    return derive(cell)


def test_lif_classes(getkey):
    ts = _derive("lif", getkey())
    v, z = 0, 1
    assert ts.h_class(v, v) == "constant-diagonal"
    assert ts.h_class(v, z) == "zero"  # detached reset, no recurrence
    assert ts.f_class(v, "w_in") == "factored"
    assert ts.F[(v, 0)].stored == (N_IN,)  # the pre-synaptic vector only
    assert ts.derived == (z,)


def test_lif_zero_reset_and_reset_gradient(getkey):
    ts = _derive("lif_zero_reset", getkey())
    assert ts.h_class(0, 0) == "diagonal"  # alpha * (1 - z_{t-1}) changes over time
    ts = _derive("lif_reset_grad", getkey())
    assert ts.h_class(0, 0) == "constant-diagonal"
    assert ts.h_class(0, 1) == "constant-diagonal"  # -threshold * I through the reset


def test_recurrent_lif_classes(getkey):
    ts = _derive("rlif", getkey())
    assert ts.h_class(0, 0) == "constant-diagonal"
    assert ts.h_class(0, 1) == "dense"  # W_rec through the spikes
    # the masked recurrent weight is traced as a factored parameter: z_{t-1} is its pre factor
    masked = [k for k, name in enumerate(ts.param_names) if name == "f(w_rec)"]
    assert len(masked) == 1 and ts.F[(0, masked[0])].kind == "factored"
    assert ts.F[(0, masked[0])].stored == (4,)


def test_alif_classes(getkey):
    ts = _derive("ralif", getkey())
    v, a, z = 0, 1, 2
    assert ts.h_class(v, v) == "constant-diagonal"
    assert ts.h_class(a, a) == "constant-diagonal"
    assert ts.h_class(a, z) == "constant-diagonal"
    assert ts.h_class(v, z) == "dense"
    assert ts.derived == (z,)
    assert ts.K[(z, v)].kind == "diagonal" and ts.K[(z, a)].kind == "diagonal"


def test_li_rnn_lstm_gru_classes(getkey):
    ts = _derive("li", getkey())
    assert ts.h_class(0, 0) == "constant-diagonal" and ts.f_class(0, "weight") == "factored"
    assert ts.f_class(0, "bias") == "diagonal"
    ts = _derive("rnn", getkey())
    assert ts.h_class(0, 0) == "dense" and ts.f_class(0, "w_in") == "factored"
    assert ts.f_class(0, "bias") == "diagonal"
    ts = _derive("lstm", getkey())
    h, c = 0, 1
    assert ts.h_class(c, c) == "diagonal" and ts.h_class(h, h) == "dense"
    # the stacked gate axis 4n is seen as (4, n): unit j meets row (g, j) through a tie, so the
    # immediate influence is one number per unit, gate and input (not [n, 4n, n_in])
    assert ts.state_names == ["h", "c"]
    assert ts.phi_shapes == [(4, 4, N_IN), (4, 4, 4), (4, 4)]
    for leaf in (h, c):
        assert ts.F[(leaf, 0)].stored == (4, 4, N_IN)
        assert ts.F[(leaf, 1)].stored == (4, 4, 4)
        assert ts.F[(leaf, 2)].stored == (4, 4)
    ts = _derive("gru", getkey())
    assert ts.h_class(0, 0) == "dense"
    assert ts.F[(0, 0)].stored == (4, 3, N_IN) and ts.F[(0, 1)].stored == (4, 3, 4)


def test_linear_attention_and_columnar_classes(getkey):
    ts = _derive("linear_attention", getkey())
    assert ts.h_class(0, 0) == "constant-diagonal" and ts.h_class(1, 1) == "constant-diagonal"
    assert ts.h_class(0, 1) == "zero" and ts.h_class(1, 0) == "zero"
    # d_model seen as (heads, d_head): S [2, 4, 4] depends on w_k's rows of its own head only
    big_s, w_k = ts.state_names.index("big_s"), ts.param_names.index("w_k")
    assert ts.phi_shapes[w_k] == (2, 4, 8)
    assert ts.F[(big_s, w_k)].stored == (2, 4, 4, 8)  # dense would be (2, 4, 4, 2, 4, 8)
    ts = _derive("columnar", getkey())
    assert ts.h_class(0, 0) == "diagonal"  # no lateral connections: each column its own
    assert ts.f_class(0, "r") == "diagonal" and ts.f_class(0, "b") == "diagonal"
    assert ts.f_class(0, "a_w") == "factored"  # column i's extractor reaches only h_i
    ts = _derive("columnar_lateral", getkey())
    assert ts.h_class(0, 0) == "dense"


# ----- elimination orders -------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_default_order_never_worse(name, getkey):
    ts = _derive(name, getkey())
    assert ts.cost["auto"] <= ts.cost["forward"]
    assert ts.cost["auto"] <= ts.cost["reverse"]
    # the greedy Markowitz plan alone already beats plain forward mode on every built-in cell
    assert ts.cost["markowitz"] < ts.cost["forward"]


def test_orders_give_the_same_jacobians(getkey):
    cell = BUILTIN["ralif"](getkey())
    state = _states(cell, getkey(), jnp.float32)
    x = jax.random.normal(getkey(), (N_IN,))
    results = [derive(cell, order=o).materialize(cell, state, x) for o in
               ("forward", "reverse", "markowitz")]
    for H, F in results[1:]:
        for key in H:
            np.testing.assert_allclose(H[key], results[0][0][key], atol=1e-6)
        for key in F:
            np.testing.assert_allclose(F[key], results[0][1][key], atol=1e-6)


# ----- a primitive with no rule ---------------------------------------------------------------
class ConvolveCell(sp.Cell):
    w: jax.Array

    def initial_state(self):
        return jnp.zeros(self.w.shape[0])

    def __call__(self, h, x):
        # jnp.convolve is conv_general_dilated, which has no rule
        h = jnp.tanh(jnp.convolve(self.w @ x, jnp.array([0.25, 0.5, 0.25]), mode="same") + 0.5 * h)
        return h, h


def test_unknown_primitive_falls_back_with_one_warning(getkey):
    cell = ConvolveCell(jax.random.normal(getkey(), (4, N_IN)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ts = derive(cell, jnp.zeros(N_IN))
        state = jax.random.normal(getkey(), (4,))
        x = jax.random.normal(getkey(), (N_IN,))
        H, F = ts.materialize(cell, state, x)
    relevant = [w for w in caught if "no Jacobian rule" in str(w.message)]
    assert len(relevant) == 1
    message = str(relevant[0].message)
    assert "conv_general_dilated" in message and "ConvolveCell" in message
    ref = _reference(cell, state, x)
    np.testing.assert_allclose(H[(0, 0)], ref[0][1][0], atol=1e-6)
    np.testing.assert_allclose(F[(0, 0)], ref[0][0][0], atol=1e-6)


def test_user_can_register_a_rule(getkey):
    from snnplast.engine import register_rule
    from snnplast.engine._rules import RULES, def_elementwise_jvp

    assert "conv_general_dilated" not in RULES
    try:
        # a wrong rule on purpose: the registry obeys
        register_rule("conv_general_dilated", RULES["tanh"])
        assert RULES["conv_general_dilated"] is RULES["tanh"]
    finally:
        del RULES["conv_general_dilated"]
    assert callable(def_elementwise_jvp)


# ----- trace memory of a factored layer ----------------------------------------------------------
def _trace_bytes(n_hidden, key):
    from snnplast.online import OnlineStep

    cell = sp.LIF(64, n_hidden, key=key)
    runner = OnlineStep(cell, jnp.zeros(64), sp.Diagonal(), lambda o, y: jnp.sum((o - y) ** 2))
    p = runner.graph.split(cell)
    s = jax.tree_util.tree_leaves(cell.initial_state())
    tr = runner.traces.zeros(jnp.float32)

    def trace_step(tr, s, x):
        new_s, H, F, K = runner.traces.blocks(p, s, [x])
        Ht = runner.traces.carried(H, {}, runner.context)
        return runner.traces.update(tr, Ht, F)

    compiled = jax.jit(trace_step).lower(tr, s, jnp.zeros(64)).compile()
    mem = compiled.memory_analysis()
    return mem.temp_size_in_bytes + mem.output_size_in_bytes, runner.traces.stored_size()


def test_factored_trace_memory_grows_linearly(getkey):
    key = getkey()
    small, n_small = _trace_bytes(128, key)
    large, n_large = _trace_bytes(256, key)
    assert n_small == 64 and n_large == 64  # the trace is the pre-synaptic vector alone
    assert large <= 2.1 * small, (small, large)


def test_inspect_repr_names_leaves_by_field(getkey):
    ts = _derive("ralif", getkey())
    assert ts.state_names == ["v", "a", "z"]
    assert ts.h_class("v", "v") == "constant-diagonal" and ts.h_class("a", "z") == ts.h_class(1, 2)
    text = repr(ts)
    assert "constant-diagonal" in text and "derived (no trace of their own): z" in text
    assert "[0]" not in text and "phi" not in text
    seq = derive(BUILTIN["sequential"](getkey()))
    assert seq.state_names == ["layers[0].v", "layers[0].z", "layers[1].state"]
    assert "f(layers[0].w_rec)" in seq.param_names and "layers[1].weight" in seq.param_names


# ----- view refinement: gated and multi-head blocks, as users write them ---------------------------
GATED = {"lstm": 4, "gru": 3, "eqx_lstm": 4, "eqx_gru": 3, "sliced_gate": 3}


@pytest.mark.parametrize("name", sorted(GATED))
def test_gated_cells_per_unit_and_gate(name, getkey):
    """Every stacked weight's immediate influence and its Diagonal trace are kept per unit and
    gate: one number per weight entry for each state leaf, never [n, gates * n, k]."""
    from snnplast.online import OnlineStep

    cell = ALL[name](getkey())
    ts = derive(cell, jnp.zeros(N_IN))
    n, gates = 4, GATED[name]
    stacked = [q for q, shape in enumerate(ts.phi_shapes) if shape[:2] == (gates, n)]
    assert len(stacked) >= 2, ts.phi_shapes  # the input and recurrent weights at least
    for (a, q), blk in ts.F.items():
        assert blk.stored_size <= int(np.prod(ts.phi_shapes[q])), (ts.param_names[q], blk)
    runner = OnlineStep(cell, jnp.zeros(N_IN), sp.Diagonal(), lambda o, y: jnp.sum(o))
    n_leaves = len(ts.state_names)
    ideal = n_leaves * sum(int(np.prod(s)) for s in ts.phi_shapes)
    assert runner.traces.stored_size() <= 2 * ideal
    exact = OnlineStep(cell, jnp.zeros(N_IN), sp.Exact(), lambda o, y: jnp.sum(o))
    assert exact.traces.stored_size() >= n * runner.traces.stored_size() // 2


def test_multi_head_user_cell_blocks_per_head(getkey):
    from snnplast.online import OnlineStep

    cell = ALL["multi_head"](getkey())  # 2 heads of 2 units, state [2, 2]
    ts = derive(cell, jnp.zeros(N_IN))
    assert ts.h_class("h", "h") == "block-diagonal" and ts.H[(0, 0)].stored == (2, 2, 2)
    assert ts.phi_shapes[ts.param_names.index("w")] == (2, 2, N_IN)
    assert ts.F[(0, ts.param_names.index("w"))].stored == (2, 2, N_IN)
    exact = OnlineStep(cell, jnp.zeros(N_IN), sp.Exact(), lambda o, y: jnp.sum(o))
    w = ts.param_names.index("w")
    # Exact's trace of w: per head a (d x d x n_in) block, never across heads
    ties, keys = exact.traces.structure[(0, w)]
    assert (0, 0) in ties  # the head dim of the state tied to the head dim of w
    out_shape, in_shape = exact.traces.shapes[(0, w)]
    sizes = [out_shape[o] if o is not None else in_shape[i] for o, i in keys]
    assert int(np.prod(sizes)) == 2 * 2 * 2 * N_IN  # heads x d x d x n_in, dense: 4 x 4 x n_in


def test_concatenated_gates_tie_units(getkey):
    cell = ALL["concat_gates"](getkey())
    ts = derive(cell, jnp.zeros(N_IN))
    assert ts.phi_shapes == [(4, N_IN), (4, N_IN), (2, 4, 4)]
    assert [ts.F[(0, q)].stored for q in range(3)] == [(4, N_IN), (4, N_IN), (4, 2, 4)]
    assert ts.graph.view_report == []


def test_reshape_without_common_refinement_stays_dense_and_says_so(getkey):
    cell = ALL["reshape_clash"](getkey())
    ts = derive(cell, jnp.zeros(N_IN))
    reasons = [why for _, why in ts.graph.view_report]
    assert any("no common refinement" in why for why in reasons), reasons
    assert "kept dense-with-pattern: reshape (12) -> (3, 4)" in repr(ts)


# ----- compiled memory of the online gradient: Diagonal against Exact -----------------------------
def _gradient_temp_bytes(cell, method, n_in, steps, **kw):
    xs = jax.random.normal(jax.random.PRNGKey(0), (steps, n_in))
    _, outs = sp.unroll(cell, xs)
    ys = jnp.zeros_like(outs)
    params, static = eqx.partition(cell, eqx.is_inexact_array)
    loss = lambda o, y: jnp.sum((o - y) ** 2)
    f = lambda p: sp.gradients(eqx.combine(p, static), xs, ys, method=method, loss=loss, **kw)
    return jax.jit(f).lower(params).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("name", [
    "lstm", pytest.param("eqx_gru", marks=pytest.mark.slow),
    pytest.param("gru", marks=pytest.mark.slow),
    pytest.param("eqx_lstm", marks=pytest.mark.slow)])
def test_gated_diagonal_memory_an_eighth_of_exact(name, getkey):
    from user_cells import USER_CELLS

    n, n_in, steps = 48, 24, 12
    if name in USER_CELLS:
        cell = USER_CELLS[name](getkey(), n_in, n)
    else:
        cell = {"lstm": sp.LSTM, "gru": sp.GRU}[name](n_in, n, key=getkey())
    exact = _gradient_temp_bytes(cell, sp.Exact(), n_in, steps)
    # The step recursion, whose memory is the traces' (the time-blocked default adds its
    # per-step records on top: about 1/7 of Exact's here, see tests/test_blocked.py).
    diagonal = _gradient_temp_bytes(cell, sp.Diagonal(), n_in, steps, block=1)
    assert diagonal * 8 <= exact, (diagonal, exact)


# ----- the command line -----------------------------------------------------------------------
@pytest.mark.slow
def test_cli_inspect_attention_columnar_and_user_cell(capsys):
    from snnplast._cli import main

    assert main(["inspect", "--model", "attention", "--hidden", "8", "--heads", "2",
                 "--inputs", "5", "--classes", "3", "--policies", "exact,head-sparse:0.5"]) == 0
    out = capsys.readouterr().out
    assert "views finer than dims" in out and "layers[0].w_k (8, 8) as (2, 4, 8)" in out
    assert "traces under head-sparse:0.5" in out and "x smaller" in out
    assert main(["inspect", "--model", "columnar", "--hidden", "4", "--inputs", "5",
                 "--classes", "3", "--policies", "columnar"]) == 0
    assert "traces under columnar" in capsys.readouterr().out
    path = __file__.replace("test_engine.py", "user_cells.py")
    assert main(["inspect", "--cell", f"{path}:make_sliced_gate", "--hidden", "4",
                 "--inputs", "5"]) == 0
    out = capsys.readouterr().out
    assert "TraceStructure(SlicedGate" in out and "w (12, 5) as (3, 4, 5)" in out
    assert main(["inspect", "--cell", f"{path}:no_such_factory"]) == 2
    assert "has no attribute 'no_such_factory'" in capsys.readouterr().err
    assert main(["inspect", "--model", f"{path}:make_sliced_gate", "--hidden", "4",
                 "--inputs", "5", "--classes", "3"]) == 0  # as train builds it: under a readout
    out = capsys.readouterr().out
    assert "TraceStructure(Sequential" in out and "layers[0].w (12, 5) as (3, 4, 5)" in out
    assert main(["inspect", "--model", "columnar", "--heads", "2"]) == 2
    assert "--heads: model 'columnar' takes no heads" in capsys.readouterr().err
