"""Traces a block of steps at a time: the same numbers as the step recursion, memory flat in T."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from cell_zoo import ALL, BUILTIN, N_IN
from numerics import f64 as _f64
from numerics import problem
from numerics import rel as _rel
from numerics import sq as _sq

import snnplast as sp
from snnplast.online import OnlineStep, accumulation_mode, online_loss_and_grad

T = 10  # blocks of 3 leave a remainder of 1
B = 2


def _problem(cell, key, steps=T, batch=B):
    """A batch of the zoo's problems: inputs ``[batch, steps, N_IN]`` and targets."""
    return jax.vmap(lambda k: problem(cell, k, steps))(jax.random.split(key, batch))


def _mode(cell, policy):
    return accumulation_mode(OnlineStep(cell, jnp.zeros(N_IN), policy, _sq))[0]


def _check_blocks(cell, policy, blocks, key, batch=B):
    xs, ys = _problem(cell, key, batch=batch)
    l1, g1 = online_loss_and_grad(cell, xs, ys, policy, _sq, block=1)
    assert _rel(g1, jax.tree_util.tree_map(jnp.zeros_like, g1)) > 0  # something to compare
    for k in blocks:
        lk, gk = online_loss_and_grad(cell, xs, ys, policy, _sq, block=k)
        assert _rel(gk, g1) <= 1e-10, (k, _rel(gk, g1))
        assert abs(float(lk - l1)) <= 1e-10 * abs(float(l1))


# The default run takes a cell of each kind; the slow test below takes every cell and policy.
# Every cell and policy runs in the slow test below; here a representative of each mode.
@pytest.mark.parametrize("name", ["ralif", "izhikevich",
                                  pytest.param("sequential", marks=pytest.mark.slow),
                                  pytest.param("linear_attention", marks=pytest.mark.slow)])
def test_blocked_equals_steps(name, x64, getkey):
    """Diagonal in blocks of 3 (with a remainder) == step by step."""
    cell = _f64(ALL[name](getkey()))
    assert _mode(cell, sp.Diagonal()) == "blocked"
    _check_blocks(cell, sp.Diagonal(), [3], getkey())


@pytest.mark.slow
@pytest.mark.parametrize("policy", [sp.Diagonal(), sp.Diagonal(lam=0.7), sp.Immediate(),
                                    sp.ColumnarPolicy(), sp.HeadSparse(0.5)],
                         ids=lambda p: f"{p.name}-{p.lam}")
@pytest.mark.parametrize("name", sorted(ALL))
def test_blocked_equals_steps_all_policies_and_sizes(name, policy, x64, getkey):
    cell = _f64(ALL[name](getkey()))
    try:
        mode = _mode(cell, policy)
    except sp.ValidationError as error:
        if not isinstance(policy, sp.HeadSparse):
            raise
        pytest.skip(f"HeadSparse refuses {name}: {error}")  # a cell without a head axis
    if mode != "blocked":
        pytest.skip(f"{policy.name} is not per unit on {name}")
    _check_blocks(cell, policy, [3, T, T + 5], getkey())


@pytest.mark.parametrize("name", ["alif", pytest.param("lif_reset_grad", marks=pytest.mark.slow)])
def test_blocked_diagonal_equals_bptt_without_recurrence(name, x64, getkey):
    """An independent reference: without recurrence e-prop is exact, blocked or not."""
    cell = _f64(BUILTIN[name](getkey()))
    xs, ys = _problem(cell, getkey())
    ref = jax.vmap(lambda x, y: sp.gradients(cell, x, y, loss=_sq))(xs, ys)
    ref = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), ref)
    for k in (4, T):
        _, got = online_loss_and_grad(cell, xs, ys, sp.Diagonal(), _sq, block=k)
        assert _rel(got, ref) <= 1e-10


def test_default_block_only_where_traces_are_per_synapse(getkey):
    """block=None blocks ALIF's per-synapse adaptation traces, not LIF's factorised ones."""
    from snnplast.online import DEFAULT_BLOCK, resolve_block

    def default(name, policy):
        return resolve_block(OnlineStep(BUILTIN[name](getkey()), jnp.zeros(N_IN), policy, _sq),
                             None)

    assert default("ralif", sp.Diagonal()) == DEFAULT_BLOCK
    assert default("rlif", sp.Diagonal()) == 1
    assert default("ralif", sp.Exact()) == 1  # not per unit: always step by step
    runner = OnlineStep(BUILTIN["rlif"](getkey()), jnp.zeros(N_IN), sp.Diagonal(), _sq)
    assert resolve_block(runner, 7) == 7  # an explicit block is kept


def test_modes_and_entry_point(x64, getkey):
    rlif = _f64(BUILTIN["rlif"](getkey()))
    assert _mode(rlif, sp.Diagonal()) == "blocked"
    assert _mode(rlif, sp.Immediate()) == "blocked"
    assert _mode(rlif, sp.Exact()) == "step"  # W_rec is dense
    assert _mode(rlif, sp.RandomK(2)) == "step"
    _, why = accumulation_mode(OnlineStep(rlif, jnp.zeros(N_IN), sp.Exact(), _sq))
    assert "not per unit" in why
    xs, ys = _problem(rlif, getkey())
    step = sp.gradients(rlif, xs[0], ys[0], loss=_sq, method=sp.Diagonal(), block=1)
    for k in (3, None):
        got = sp.gradients(rlif, xs[0], ys[0], loss=_sq, method=sp.Diagonal(), block=k)
        assert _rel(got, step) <= 1e-10
    with pytest.raises(ValueError, match="block must be a positive integer"):
        sp.gradients(rlif, xs[0], ys[0], loss=_sq, method=sp.Diagonal(), block=0)
    with pytest.raises(ValueError, match="block has no meaning for method 'bptt'"):
        sp.gradients(rlif, xs[0], ys[0], loss=_sq, block=4)


def test_default_block_whole_sequence_when_short(x64, getkey, monkeypatch):
    """A per-synapse trace (ALIF's adaptation): a short sequence is one block (no trace is
    ever built; its records recomputed 3 steps at a time, so a chunk of 1 and three of 3), a
    long one blocks of DEFAULT_BLOCK; both give the step recursion's numbers. A factorised
    trace (LIF) runs step by step."""
    import snnplast.online._blocked as blocked
    from snnplast.online import DEFAULT_BLOCK, resolve_block, whole_sequence_steps

    monkeypatch.setattr(blocked, "RECOMPUTE_EVERY", 3)

    ralif = _f64(BUILTIN["ralif"](getkey()))
    runner = OnlineStep(ralif, jnp.zeros(N_IN), sp.Diagonal(), _sq)
    longest = whole_sequence_steps(runner)
    assert longest >= DEFAULT_BLOCK
    assert resolve_block(runner, None, T) == T
    assert resolve_block(runner, None, longest) == longest
    assert resolve_block(runner, None, longest + 1) == DEFAULT_BLOCK
    assert resolve_block(runner, 5, T) == 5
    rlif = _f64(BUILTIN["rlif"](getkey()))
    assert resolve_block(OnlineStep(rlif, jnp.zeros(N_IN), sp.Diagonal(), _sq), None, T) == 1
    xs, ys = _problem(ralif, getkey())
    l1, g1 = online_loss_and_grad(ralif, xs, ys, sp.Diagonal(), _sq, block=1)
    l0, g0 = online_loss_and_grad(ralif, xs, ys, sp.Diagonal(), _sq)
    assert _rel(g0, g1) <= 1e-10
    assert abs(float(l0 - l1)) <= 1e-10 * abs(float(l1))


@pytest.mark.parametrize("name, block", [("rlif", 1)] + [
    pytest.param(n, b, marks=pytest.mark.slow) for n, b in (("ralif", 1), ("ralif", 3),
                                                            ("ralif", None))])
def test_one_target_per_sequence(name, block, x64, getkey, monkeypatch):
    """Targets ``[B, 1, ...]`` (the same at every step) give the numbers of the same targets
    broadcast to ``[B, T, ...]``: in blocks, as one recomputed block (ralif, ``None``) and step
    by step; a time axis of another length is refused."""
    import snnplast.online._blocked as blocked

    monkeypatch.setattr(blocked, "RECOMPUTE_EVERY", 3)
    cell = _f64(BUILTIN[name](getkey()))
    xs, ys = _problem(cell, getkey())
    once = ys[:, :1]
    l1, g1 = online_loss_and_grad(cell, xs, jnp.broadcast_to(once, ys.shape), sp.Diagonal(), _sq,
                                  block=block)
    l0, g0 = online_loss_and_grad(cell, xs, once, sp.Diagonal(), _sq, block=block)
    assert _rel(g1, jax.tree_util.tree_map(jnp.zeros_like, g1)) > 0  # something to compare
    assert _rel(g0, g1) <= 1e-12, _rel(g0, g1)
    assert abs(float(l0 - l1)) <= 1e-12 * abs(float(l1))
    with pytest.raises(ValueError, match=r"targets must be \[B, T, \.\.\.\] with T = 10"):
        online_loss_and_grad(cell, xs, ys[:, :-1], sp.Diagonal(), _sq)


@pytest.mark.slow
def test_one_target_per_sequence_is_not_materialised(getkey):
    """A label for the whole sequence, passed as ``[B, 1]``, adds no scratch per step; broadcast
    to ``[B, T]`` inside the compiled function, it does (XLA materialises it)."""
    cell = BUILTIN["rlif"](getkey())
    params, static = eqx.partition(cell, eqx.is_inexact_array)
    n_out = sp.unroll(cell, jnp.zeros((1, N_IN)))[1].shape[-1]

    def temp(steps, broadcast):
        def f(params, xs, y):
            y = jnp.broadcast_to(y, (B, steps, n_out)) if broadcast else y
            return online_loss_and_grad(eqx.combine(params, static), xs, y, sp.Diagonal(), _sq)

        args = (params, jnp.zeros((B, steps, N_IN)), jnp.zeros((B, 1, n_out)))
        return jax.jit(f).lower(*args).compile().memory_analysis().temp_size_in_bytes

    short, long = temp(96, False), temp(960, False)
    assert long <= 1.02 * short, (short, long)
    assert temp(960, True) >= long + B * 960 * n_out * 4, (long, temp(960, True))


def _learn(cell, policy, every, block, chunks, key):
    xs, ys = _problem(cell, key, steps=sum(chunks))
    learner = sp.OnlineLearner(policy, _sq, optax.sgd(0.05), every=every, block=block)
    state = learner.init(cell, jnp.zeros(N_IN, jnp.float64), batch=B)
    losses, start = [], 0
    for n in chunks:
        cell, state, l_ = learner.update(cell, state, xs[:, start:start + n],
                                         ys[:, start:start + n])
        losses.append(l_)
        start += n
    return cell, state, jnp.concatenate(losses), learner.pending_gradients(cell, state)


@pytest.mark.parametrize("every, block, chunks", [
    (3, None, [7, 11]),
    pytest.param(10, 4, [7, 25, 4], marks=pytest.mark.slow),
])
def test_learner_in_blocks_equals_steps(every, block, chunks, x64, getkey):
    """Updates every K steps, chunks that do not line up with them: the same parameters."""
    cell = _f64(BUILTIN["ralif"](getkey()))
    key = getkey()
    ref = _learn(cell, sp.Diagonal(), every, 1, chunks, key)
    got = _learn(cell, sp.Diagonal(), every, block, chunks, key)
    assert int(got[1].updates) == int(ref[1].updates) == sum(chunks) // every
    assert _rel(got[0], ref[0]) <= 1e-10
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-10)
    assert _rel(got[3], ref[3]) <= 1e-10
    assert _rel(ref[0], cell) > 1e-6  # the parameters did move


def _blocked_temp_bytes(cell, steps, block, batch=4):
    xs = jnp.zeros((batch, steps, N_IN))
    ys = jnp.zeros((batch, steps, cell.n))

    def f(params, xs, ys):
        c = eqx.combine(params, eqx.filter(cell, eqx.is_inexact_array, inverse=True))
        return online_loss_and_grad(c, xs, ys, sp.Diagonal(), _sq, block=block)

    # The sequence is an argument: a closed-over one would be a constant in the scratch.
    params = eqx.filter(cell, eqx.is_inexact_array)
    return jax.jit(f).lower(params, xs, ys).compile().memory_analysis().temp_size_in_bytes


def test_blocked_memory_grows_with_the_block_not_the_sequence(getkey):
    cell = sp.ALIF(N_IN, 32, key=getkey(), recurrent=True)
    short, long = _blocked_temp_bytes(cell, 64, 16), _blocked_temp_bytes(cell, 1024, 16)
    assert long <= 1.1 * short, (short, long)
    bigger = _blocked_temp_bytes(cell, 1024, 128)
    assert bigger > short, (short, bigger)


@pytest.mark.parametrize("whole_batch", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_blocked_traces_updated_in_place(whole_batch, getkey, monkeypatch):
    """A block's end updates the per-synapse traces a sample at a time in one buffer: the
    blocks' scratch holds fewer than two copies of the traces beyond one block's records. The
    whole batch updated at once (slow) holds more: the check can fail."""
    import snnplast.online._blocked as blocked

    cell = sp.ALIF(N_IN, 64, key=getkey(), recurrent=True)
    batch, block = 8, 8
    trace = batch * cell.n * (cell.n + N_IN) * 4  # bytes: the traces of W_rec and W_in
    records = _blocked_temp_bytes(cell, block, block, batch=batch)  # one block, no trace
    if whole_batch:
        monkeypatch.setattr(blocked, "UPDATE_SAMPLES", batch)
    scratch = _blocked_temp_bytes(cell, 64, block, batch=batch)
    assert (scratch > records + 2 * trace) == whole_batch, (records, trace, scratch)


def test_samples_per_update_divides_the_batch():
    from snnplast.online import samples_per_update

    assert [samples_per_update(s, 12) for s in (1, 5, 12, 40, None)] == [1, 4, 12, 12, 12]


@pytest.mark.slow
@pytest.mark.parametrize("samples", [2, 4])
def test_blocked_equals_steps_a_few_samples_at_a_time(samples, x64, getkey, monkeypatch):
    """The traces updated two samples at a time (a batch of 4) or the whole batch at once:
    the step recursion's numbers."""
    import snnplast.online._blocked as blocked

    monkeypatch.setattr(blocked, "UPDATE_SAMPLES", samples)
    cell = _f64(BUILTIN["ralif"](getkey()))
    _check_blocks(cell, sp.Diagonal(), [3], getkey(), batch=4)


@pytest.mark.slow
@pytest.mark.parametrize("name, policy", [
    ("ralif", sp.Diagonal()), ("ralif", sp.Diagonal(lam=0.7)), ("ralif", sp.Immediate()),
    ("alif", sp.Diagonal()), ("sequential", sp.Diagonal()), ("izhikevich", sp.Diagonal()),
    ("linear_attention", sp.Diagonal()), ("columnar_lateral", sp.ColumnarPolicy())],
    ids=lambda v: v if isinstance(v, str) else f"{v.name}-{v.lam}")
def test_whole_sequence_recomputed_equals_steps(name, policy, x64, getkey, monkeypatch):
    """A whole-sequence block whose records are recomputed from kept states, 3 or 4 steps at
    a time (chunks of 1 + 3 x 3, 2 + 2 x 4) or not at all: the step recursion's numbers."""
    import snnplast.online._blocked as blocked

    cell = _f64(ALL[name](getkey()))
    xs, ys = _problem(cell, getkey())
    l1, g1 = online_loss_and_grad(cell, xs, ys, policy, _sq, block=1)
    for every in (3, 4, None):
        monkeypatch.setattr(blocked, "RECOMPUTE_EVERY", every)
        lk, gk = online_loss_and_grad(cell, xs, ys, policy, _sq, block=T)
        assert _rel(gk, g1) <= 1e-10, (every, _rel(gk, g1))
        assert abs(float(lk - l1)) <= 1e-10 * abs(float(l1))


@pytest.mark.slow
def test_whole_sequence_recomputed_keeps_little(getkey, monkeypatch):
    """A whole-sequence block that recomputes its records 10 steps at a time keeps less than
    half the scratch of one that keeps every step's records (ALIF, 64 neurons, T=100)."""
    import snnplast.online._blocked as blocked

    cell = sp.ALIF(N_IN, 64, key=getkey(), recurrent=True)
    monkeypatch.setattr(blocked, "RECOMPUTE_EVERY", 10)
    recomputed = _blocked_temp_bytes(cell, 100, 100, batch=8)
    monkeypatch.setattr(blocked, "RECOMPUTE_EVERY", None)
    kept = _blocked_temp_bytes(cell, 100, 100, batch=8)
    assert recomputed < 0.5 * kept, (recomputed, kept)


def test_bench_prints_one_json_object(capsys):
    import json

    from snnplast._cli import main

    assert main(["bench", "--model", "rlif", "--hidden", "8", "--inputs", "4", "--batch", "2",
                 "--steps", "5", "--block", "2", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["mode"] == "blocked" and row["block"] == 2 and row["steps"] == 5
    assert len(row["ms_per_step_all"]) == 5 and row["ms_per_step"] > 0
    assert row["compile_seconds"] > 0 and row["temp_bytes"] > 0 and row["peak_rss_bytes"] > 0
    assert 0.5 < row["cosine_vs_bptt"] <= 1.0 + 1e-9
    assert main(["bench", "--model", "rlif", "--method", "bptt", "--block", "3"]) == 2
    assert "block has no meaning for method 'bptt'" in capsys.readouterr().err
