"""Transport policies against BPTT, where the mathematics says they are equal."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cell_zoo import ALL, BUILTIN, N_IN, cases
from numerics import f64 as _f64
from numerics import problem
from numerics import rel as _rel
from numerics import sq as _sq

import snnplast as sp

T = 9


def _problem(cell, key):
    return problem(cell, key, T)


# Slow here: cells whose kind another default case covers, and the two costliest to trace
# (lstm: gru and eqx_gru are gated; columnar_lateral: its Jacobians are checked against jacfwd in
# float64 by default in test_engine.py, and Exact composes them as for any cell).
@pytest.mark.parametrize("name", cases(ALL, slow={"columnar", "eqx_lstm", "concat_gates",
                                                  "scratch_gru", "alif", "reshape_clash",
                                                  "lstm", "columnar_lateral"}))
def test_exact_equals_bptt(name, x64, getkey):
    cell = _f64(ALL[name](getkey()))
    xs, ys = _problem(cell, getkey())
    ref = sp.gradients(cell, xs, ys, loss=_sq)
    got = sp.gradients(cell, xs, ys, loss=_sq, method=sp.Exact())
    assert _rel(got, ref) <= 1e-8


@pytest.mark.parametrize("name", ["lif", "lif_zero_reset", "lif_reset_grad", "alif"])
def test_diagonal_equals_bptt_without_recurrence(name, x64, getkey):
    cell = _f64(BUILTIN[name](getkey()))
    xs, ys = _problem(cell, getkey())
    _, spikes = sp.unroll(cell, xs)
    assert 0.05 < float(jnp.mean(spikes)) < 0.95  # the surrogate paths are exercised
    ref = sp.gradients(cell, xs, ys, loss=_sq)
    got = sp.gradients(cell, xs, ys, loss=_sq, method=sp.Diagonal())
    assert _rel(got, ref) <= 1e-8


def _step_jacobians(cell, xs, ys):
    """Per step, densely from jax.jacfwd / jax.grad over the flattened state and parameters:
    ``dl_t/dtheta``, ``dl_t/ds_{t-1}`` (the loss of step t through that step only), ``H_t`` and
    ``F_t``; and the state leaves' (offset, shape). None of them depends on a policy."""
    from jax.flatten_util import ravel_pytree

    params, static = eqx.partition(cell, eqx.is_inexact_array)
    p, unravel_p = ravel_pytree(params)
    s, unravel_s = ravel_pytree(cell.initial_state())
    leaves, offset = [], 0
    for leaf in jax.tree_util.tree_leaves(cell.initial_state()):
        leaves.append((offset, jnp.shape(leaf)))
        offset += int(np.prod(jnp.shape(leaf)))

    def step(p, s, x):
        new, out = eqx.combine(unravel_p(p), static)(unravel_s(s), x)
        return ravel_pytree(new)[0], out

    @jax.jit
    def one(s, x, y):
        dl_dp, dl_ds = jax.grad(lambda p_, s_: _sq(step(p_, s_, x)[1], y), argnums=(0, 1))(p, s)
        h = jax.jacfwd(lambda s_: step(p, s_, x)[0])(s)
        f = jax.jacfwd(lambda p_: step(p_, s, x)[0])(p)
        return step(p, s, x)[0], (dl_dp, dl_ds, h, f)

    steps = []
    for t in range(xs.shape[0]):
        s, parts = one(s, xs[t], ys[t])
        steps.append(parts)
    return steps, leaves, unravel_p


def _transport_reference(jacobians, carry):
    """The online gradient by its definition: ``G_t = carry(H_t, t, leaves) G_{t-1} + F_t`` and
    ``dL/dtheta = sum_t dl_t/dtheta + dl_t/ds_{t-1} G_{t-1}``."""
    steps, leaves, unravel_p = jacobians
    g = grad = None
    for t, (dl_dp, dl_ds, h, f) in enumerate(steps):
        grad = dl_dp if grad is None else grad + dl_dp + dl_ds @ g
        g = f if g is None else carry(h, t, leaves) @ g + f
    return unravel_p(grad)


def _own_part(h, leaves):
    """Entries of H between a neuron's own leaves: equal index in two leaves of one shape."""
    mask = np.zeros(h.shape, bool)
    for oa, sa in leaves:
        for ob, sb in leaves:
            if sa == sb:
                n = int(np.prod(sa))
                mask[oa + np.arange(n), ob + np.arange(n)] = True
    return jnp.where(mask, h, 0.0)


@pytest.mark.parametrize("name", cases(["rlif", "ralif", "rnn", "lstm", "gru"],
                                      slow={"ralif", "rnn", "gru"}))
def test_diagonal_is_the_neuron_local_recursion(name, x64, getkey):
    """With recurrence Diagonal is not BPTT, but exactly the recursion it defines: the trace
    carries each neuron's own part of H_t (computed here densely from jax.jacfwd)."""
    cell = _f64(BUILTIN[name](getkey()))
    xs, ys = _problem(cell, getkey())
    got = sp.gradients(cell, xs, ys, loss=_sq, method=sp.Diagonal())
    want = _transport_reference(_step_jacobians(cell, xs, ys),
                                lambda h, t, leaves: _own_part(h, leaves))
    assert _rel(got, want) <= 1e-9
    assert _rel(got, sp.gradients(cell, xs, ys, loss=_sq)) > 1e-4  # an approximation here


def test_columnar_policy_exact_without_lateral_connections(x64, getkey):
    cell = _f64(BUILTIN["columnar"](getkey()))
    xs, ys = _problem(cell, getkey())
    ref = sp.gradients(cell, xs, ys, loss=_sq)
    assert _rel(sp.gradients(cell, xs, ys, loss=_sq, method=sp.ColumnarPolicy()), ref) <= 1e-8
    lateral = _f64(BUILTIN["columnar_lateral"](getkey()))
    ref = sp.gradients(lateral, xs, ys, loss=_sq)
    assert _rel(sp.gradients(lateral, xs, ys, loss=_sq, method=sp.ColumnarPolicy()), ref) > 1e-6


def _sign_agreement(density, seed):
    """Javed et al.'s test-bed: 50 binary inputs, targets uniform in (-50, 50), 50 steps; the
    fraction of hidden parameters whose Master-User gradient has BPTT's sign."""
    key = jax.random.PRNGKey(seed)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    col = sp.Columnar(50, 10, key=k1, n_features=5, lateral_density=density)
    readout = sp.LI(10, 1, key=k2, kappa=0.0)  # a readout without memory
    model = _f64(sp.Sequential([col, readout]))
    xs = jax.random.bernoulli(k3, 0.5, (50, 50)).astype(jnp.float64)
    ys = jax.random.uniform(k4, (50, 1), jnp.float64, -50.0, 50.0)
    ref = sp.gradients(model, xs, ys, loss=_sq).layers[0]
    got = sp.gradients(model, xs, ys, loss=_sq, method=sp.ColumnarPolicy()).layers[0]
    a = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(ref)])
    b = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(got)])
    nz = np.abs(a) > 1e-12
    return float(np.mean(np.sign(a[nz]) == np.sign(b[nz])))


@pytest.mark.slow
def test_columnar_agreement_exact_without_and_lower_with_lateral_connections(x64):
    assert _sign_agreement(0.0, 0) == pytest.approx(1.0)
    assert _sign_agreement(1.0, 0) < 0.99


@pytest.mark.slow
def test_columnar_agreement_falls_with_lateral_density(x64):
    agree = {d: np.mean([_sign_agreement(d, s) for s in range(3)]) for d in (0.0, 0.2, 1.0)}
    assert agree[0.0] == pytest.approx(1.0)
    assert agree[0.0] > agree[0.2] > agree[1.0]


@pytest.mark.parametrize("name", cases(["rlif", "rnn", "lstm"], slow={"rnn", "lstm"}))
def test_random_k_limits(name, x64, getkey):
    cell = _f64(BUILTIN[name](getkey()))
    xs, ys = _problem(cell, getkey())
    exact = sp.gradients(cell, xs, ys, loss=_sq, method=sp.Exact())
    diag = sp.gradients(cell, xs, ys, loss=_sq, method=sp.Diagonal())
    n = 4
    full = sp.gradients(cell, xs, ys, loss=_sq, method=sp.RandomK(k=n, scale=False))
    none = sp.gradients(cell, xs, ys, loss=_sq, method=sp.RandomK(k=0))
    assert _rel(full, exact) <= 1e-8
    assert _rel(none, diag) <= 1e-8
    some = sp.gradients(cell, xs, ys, loss=_sq, method=sp.RandomK(k=2), key=getkey())
    assert _rel(some, exact) > 1e-8 and np.isfinite(_rel(some, exact))


def _through(units, n, k, scale):
    """RandomK's carried block for the columns `units` (a single state leaf of n units)."""
    def carry(h, t, leaves):
        d = jnp.diag(jnp.diag(h))
        cols = np.zeros(n)
        cols[list(units(h - d, t))] = 1.0
        return d + (h - d) * cols[None, :] * (n / k if scale else 1.0)

    return carry


def test_random_k_selections_select_what_they_say(x64, getkey):
    """RNN (one state leaf of n = 4 units), k = 2: `adversarial` carries, at every step, the k
    columns of H - D with the smallest norm; `fixed` one k-subset for the whole sequence,
    `random` a fresh one each step, so no single subset reproduces it."""
    cell = _f64(BUILTIN["rnn"](getkey()))
    xs, ys = _problem(cell, getkey())
    n, k = 4, 2

    def weakest(off, t):
        return np.argsort(np.asarray(jnp.sum(off**2, axis=0)))[:k]

    jacobians = _step_jacobians(cell, xs, ys)
    adversarial = sp.gradients(cell, xs, ys, loss=_sq,
                               method=sp.RandomK(k, select="adversarial", scale=True))
    assert _rel(adversarial, _transport_reference(jacobians, _through(weakest, n, k, True))) <= 1e-9

    import itertools

    subsets = list(itertools.combinations(range(n), k))
    per_subset = [_transport_reference(jacobians, _through(lambda off, t, c=c: c, n, k, False))
                  for c in subsets]
    fixed = sp.gradients(cell, xs, ys, loss=_sq, method=sp.RandomK(k, select="fixed", scale=False),
                         key=getkey())
    matches = [c for c, want in zip(subsets, per_subset) if _rel(fixed, want) <= 1e-9]
    assert len(matches) == 1, matches
    resampled = sp.gradients(cell, xs, ys, loss=_sq, method=sp.RandomK(k, scale=False),
                             key=getkey())
    assert min(_rel(resampled, want) for want in per_subset) > 1e-6
    with pytest.raises(ValueError, match="select must be"):
        sp.RandomK(k=2, select="best")
    with pytest.raises(ValueError, match="k must be a non-negative integer"):
        sp.RandomK(k=-1)


@pytest.mark.slow
def test_random_k_fixed_on_alif_is_its_recursion(x64, getkey):
    """ALIF (leaves v, a and the spikes z of n = 4 units; the v and a leaks are elementwise
    blocks), k = 2, one subset for the sequence: the gradient is exactly the recursion
    ``H~ = D + (H - D) diag(m)`` with the same units selected in every leaf (dense reference
    from jax.jacfwd), for exactly one of the 6 subsets."""
    import itertools

    cell = _f64(BUILTIN["ralif"](getkey()))
    xs, ys = _problem(cell, getkey())
    jacobians = _step_jacobians(cell, xs, ys)

    def through(units):
        def carry(h, t, leaves):
            own = _own_part(h, leaves)
            cols = np.zeros(h.shape[1])
            for off, shape in leaves:
                if int(np.prod(shape)) == 4:
                    cols[off + np.asarray(units)] = 1.0
            return own + (h - own) * cols[None, :]

        return carry

    subsets = list(itertools.combinations(range(4), 2))
    got = sp.gradients(cell, xs, ys, loss=_sq, method=sp.RandomK(2, select="fixed"),
                       key=getkey())
    matches = [c for c in subsets
               if _rel(got, _transport_reference(jacobians, through(c))) <= 1e-9]
    assert len(matches) == 1, matches


@pytest.mark.slow  # a cost check (the numbers are the same either way); ~10 s of compiling
def test_random_k_keeps_the_tied_trace_of_an_elementwise_block(x64, getkey):
    """An elementwise block (a leak, an adaptation; ALIF without recurrence has only such
    blocks) has no paths between units to carry: RandomK keeps Diagonal's tied traces there,
    not dense n x |theta| ones, which would cost Exact's memory for exact zeros."""
    from snnplast.online import OnlineStep

    cell = _f64(BUILTIN["alif"](getkey()))
    x0 = jnp.zeros((N_IN,), jnp.float64)
    diagonal = OnlineStep(cell, x0, sp.Diagonal(), _sq).traces
    random_k = OnlineStep(cell, x0, sp.RandomK(2), _sq).traces
    assert diagonal.structure and random_k.structure == diagonal.structure
    assert random_k.stored_size() == diagonal.stored_size()


@pytest.mark.slow
def test_sequential_is_exact_for_one_layer_under_a_memoryless_readout(x64, getkey):
    """Each layer keeps traces for its own parameters only; the lower layer's learning signal is
    the same-step backward pass through the readout. That is exact when the readout has no
    memory (kappa = 0) and the layer's own H is carried in full, and not otherwise."""
    k1, k2 = getkey(), getkey()
    hidden = sp.LIF(N_IN, 4, key=k1, gain=3.0, recurrent=True)
    full = sp.RandomK(k=4, scale=False)  # carries all of H, but keeps traces per layer
    for kappa, exact in ((0.0, True), (0.9, False)):
        model = _f64(sp.Sequential([hidden, sp.LI(4, 3, key=k2, kappa=kappa)]))
        xs, ys = _problem(model, getkey())
        ref = sp.gradients(model, xs, ys, loss=_sq)
        rel = _rel(sp.gradients(model, xs, ys, loss=_sq, method=full), ref)
        assert (rel <= 1e-8) if exact else (rel > 1e-4), (kappa, rel)
        # Exact keeps the cross-layer traces as well, so it is exact either way
        assert _rel(sp.gradients(model, xs, ys, loss=_sq, method=sp.Exact()), ref) <= 1e-8


def _truncated_bptt(cell, xs, ys):
    """BPTT where the state two steps back is a constant: one transition of credit."""
    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def total(params):
        c = eqx.combine(params, static)
        states = [c.initial_state()]
        for t in range(T):
            states.append(c(states[-1], xs[t])[0])
        loss = 0.0
        for t in range(T):
            s = states[t - 1] if t >= 1 else c.initial_state()
            s = jax.lax.stop_gradient(s)
            if t >= 1:
                s, _ = c(s, xs[t - 1])
            _, out = c(s, xs[t])
            loss = loss + _sq(out, ys[t])
        return loss

    return jax.grad(total)(params)


@pytest.mark.parametrize("name", cases(["rlif", "rnn", "gru"], slow={"gru"}))
def test_immediate_equals_one_step_truncated_bptt(name, x64, getkey):
    cell = _f64(BUILTIN[name](getkey()))
    xs, ys = _problem(cell, getkey())
    got = sp.gradients(cell, xs, ys, loss=_sq, method=sp.Immediate())
    assert _rel(got, _truncated_bptt(cell, xs, ys)) <= 1e-8
    # lam = 0 turns any policy into the immediate rule
    lam0 = sp.gradients(cell, xs, ys, loss=_sq, method=sp.Exact(lam=0.0))
    assert _rel(lam0, got) <= 1e-8


@pytest.mark.slow
def test_head_sparse_limits(x64, getkey):
    cell = _f64(BUILTIN["linear_attention"](getkey()))
    xs, ys = _problem(cell, getkey())
    ref = sp.gradients(cell, xs, ys, loss=_sq)
    imm = sp.gradients(cell, xs, ys, loss=_sq, method=sp.Immediate())
    assert _rel(sp.gradients(cell, xs, ys, loss=_sq, method=sp.HeadSparse(1.0)), ref) <= 1e-8
    assert _rel(sp.gradients(cell, xs, ys, loss=_sq, method=sp.HeadSparse(0.0)), imm) <= 1e-8
    half = sp.gradients(cell, xs, ys, loss=_sq, method=sp.HeadSparse(0.5), key=getkey())
    assert 1e-8 < _rel(half, ref) < _rel(imm, ref) + 1e-12


def test_head_sparse_refuses_a_cell_without_heads(getkey):
    cell = BUILTIN["rlif"](getkey())
    xs = jnp.zeros((3, N_IN))
    with pytest.raises(sp.ValidationError, match=r"head axis.*\(4,\)"):
        sp.gradients(cell, xs, jnp.zeros((3, 4)), loss=_sq, method=sp.HeadSparse(0.5))


def test_bad_method_is_one_line(getkey):
    cell = BUILTIN["lif"](getkey())
    xs = jnp.zeros((3, N_IN))
    with pytest.raises(ValueError, match="transport policy.*'diag'"):
        sp.gradients(cell, xs, jnp.zeros((3, 4)), loss=_sq, method="diag")
    with pytest.raises(sp.ValidationError, match="lam must be a number in"):
        sp.Diagonal(lam=2.0)


# ----- memory independent of sequence length ------------------------------------------------------
def _temp_bytes(cell, policy, n_steps):
    from snnplast.online import online_loss_and_grad

    xs = jnp.zeros((2, n_steps, N_IN))
    _, outs = sp.unroll(cell, xs[0])
    ys = jnp.zeros((2, n_steps) + outs.shape[1:])

    def f(params, xs, ys):
        c = eqx.combine(params, eqx.filter(cell, eqx.is_inexact_array, inverse=True))
        return online_loss_and_grad(c, xs, ys, policy, _sq)

    # The sequence is an argument, as in training: closed over, it would be a compile-time
    # constant that XLA may place in the scratch (it does inside the nested scans of blocks).
    params = eqx.filter(cell, eqx.is_inexact_array)
    compiled = jax.jit(f).lower(params, xs, ys).compile()
    return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("policy, name", [
    (sp.Exact(), "rlif"), (sp.Diagonal(), "ralif"), (sp.RandomK(k=2), "rnn"),
    pytest.param(sp.Immediate(), "gru", marks=pytest.mark.slow),
    pytest.param(sp.HeadSparse(0.5), "linear_attention", marks=pytest.mark.slow),
    pytest.param(sp.ColumnarPolicy(), "columnar_lateral",
                 marks=pytest.mark.slow),
])
def test_memory_independent_of_sequence_length(policy, name, getkey):
    cell = BUILTIN[name](getkey())
    short, long = _temp_bytes(cell, policy, 100), _temp_bytes(cell, policy, 1000)
    assert long <= 1.1 * short, (short, long)


def test_memory_flat_with_steps_left_over(getkey):
    """Steps left over by whole chunks of the step recursion's contractions add no records:
    run as a shorter chunk, theirs were kept beside the loop's (1.38x the scratch)."""
    from snnplast.online import CONTRACT_EVERY

    cell = BUILTIN["rlif"](getkey())
    whole = 3 * CONTRACT_EVERY
    more = _temp_bytes(cell, sp.Diagonal(), whole + CONTRACT_EVERY // 2)
    assert more <= 1.1 * _temp_bytes(cell, sp.Diagonal(), whole), more


# ----- Master-User through an online LMS readout ----------------------------------------------------
def _lms_true_gradient(cell, xs, ys, alpha, w0):
    """jax.grad of an explicit loop in which the readout learns by LMS at every step."""
    params, static = eqx.partition(cell, eqx.is_inexact_array)

    def total(params):
        c = eqx.combine(params, static)
        h, w, loss = c.initial_state(), w0, 0.0
        for t in range(xs.shape[0]):
            h, _ = c(h, xs[t])
            d = ys[t] - w @ h
            loss = loss + 0.5 * d**2
            w = w + alpha * d * h
        return loss

    return jax.grad(total)(params)


def _lms_problem(seed, n_in, n_cols, n_steps, density=0.0):
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    cell = _f64(sp.Columnar(n_in, n_cols, key=k[0], n_features=5, lateral_density=density))
    xs = jax.random.bernoulli(k[1], 0.5, (n_steps, n_in)).astype(jnp.float64)
    ys = jax.random.uniform(k[2], (n_steps,), jnp.float64, -50.0, 50.0)
    w0 = jax.random.normal(k[3], (n_cols,), jnp.float64) * 0.1
    return cell, xs, ys, w0


@pytest.mark.slow
def test_master_user_lms_is_exact_without_learning_the_readout(x64):
    from snnplast.online import master_user_lms

    cell, xs, ys, w0 = _lms_problem(0, 8, 4, 12)
    got, preds, w = master_user_lms(cell, xs, ys, alpha=0.0, w0=w0)
    assert _rel(got, _lms_true_gradient(cell, xs, ys, 0.0, w0)) <= 1e-8
    np.testing.assert_allclose(w, w0)
    got, preds, w = master_user_lms(cell, xs, ys, alpha=1e-2, w0=w0)
    assert preds.shape == (12,) and not np.allclose(w, w0)


@pytest.mark.slow
def test_master_user_meta_gradient_improves_agreement(x64):
    """Javed et al.'s figure 5: ignoring the path through the LMS updates costs agreement."""
    from snnplast.online import master_user_lms

    def agreement(a, b):
        a = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(a)])
        b = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(b)])
        nz = np.abs(a) > 1e-12
        return float(np.mean(np.sign(a[nz]) == np.sign(b[nz])))

    with_meta, without = [], []
    for seed in range(3):
        cell, xs, ys, w0 = _lms_problem(seed, 50, 10, 50)
        ref = _lms_true_gradient(cell, xs, ys, 1e-2, w0)
        with_meta.append(agreement(ref, master_user_lms(cell, xs, ys, alpha=1e-2, w0=w0)[0]))
        without.append(agreement(ref, master_user_lms(cell, xs, ys, alpha=1e-2, w0=w0,
                                                      meta=False)[0]))
    assert np.mean(with_meta) > np.mean(without)
