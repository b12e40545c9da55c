"""Data of another precision than the model (``jax_enable_x64`` on): float64 inputs and
targets for a float32 model, float32 ones for a float64 model. Every method reads them in the
model's precision, so each gives the gradient of the same data cast by hand (before: BPTT and
the online methods failed in ``lax.scan`` on a float64 state carried as float32)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from numerics import loop_reference, rel

import snnplast as sp

N_IN, H, T = 3, 4, 5


def sq(out, y):
    return jnp.sum((out - y) ** 2)


def _model(dtype):
    m = sp.LIF(N_IN, H, key=jax.random.PRNGKey(0))
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(np.asarray(a), dtype) if eqx.is_inexact_array(a) else a, m)


def _data(dtype):
    rng = np.random.default_rng(0)
    return (jnp.asarray(rng.normal(size=(T, N_IN)) * 2.0, dtype),
            jnp.asarray(rng.normal(size=(T, H)), dtype))


@pytest.mark.parametrize("model_dtype, data_dtype, promotion", [
    (jnp.float32, jnp.float64, "standard"),  # what a user has: jnp would promote
    # the test suite's: jnp refuses to mix (the cast is the same; slow set)
    pytest.param(jnp.float32, jnp.float64, "strict", marks=pytest.mark.slow),
    (jnp.float64, jnp.float32, "strict"),  # under "standard" this order always worked
])
def test_every_method_reads_data_in_the_models_precision(model_dtype, data_dtype, promotion,
                                                         x64):
    with jax.numpy_dtype_promotion(promotion):
        _check_methods(model_dtype, data_dtype)


def _check_methods(model_dtype, data_dtype):
    model = _model(model_dtype)
    xs, ys = _data(data_dtype)
    ref = loop_reference(model, xs.astype(model_dtype), ys.astype(model_dtype), sq)
    tol = 1e-5 if model_dtype == jnp.float32 else 1e-10
    for method in ("bptt", sp.Exact(), sp.Diagonal()):
        g = sp.gradients(model, xs, ys, method=method, loss=sq)
        assert g.w_in.dtype == model_dtype, method
        assert rel(eqx.filter(g, eqx.is_inexact_array), ref) <= tol, method
    _, outs = sp.unroll(model, xs)
    assert outs.dtype == model_dtype
    assert sp.sequence_loss(model, xs, ys, sq).dtype == model_dtype


def test_online_learner_reads_float64_data_of_a_float32_model(x64):
    """The same update as with the inputs and targets cast by hand."""
    model = _model(jnp.float32)
    xs, ys = _data(jnp.float64)
    results = []
    for inputs, targets in ((xs, ys), (xs.astype(jnp.float32), ys.astype(jnp.float32))):
        learner = sp.OnlineLearner(sp.Diagonal(), sq, optax.sgd(0.1))
        state = learner.init(model, inputs[0])
        new, state, losses = learner.update(model, state, inputs, targets)
        assert new.w_in.dtype == jnp.float32 and losses.dtype == jnp.float32
        results.append((new.w_in, losses))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-6)


class Widening(sp.Cell):
    """A float32 state that its own step turns into float64 (an astype in the step)."""

    w: jax.Array

    def initial_state(self):
        return {"v": jnp.zeros(self.w.shape[0], jnp.float32)}

    def __call__(self, s, x):
        v = (0.9 * s["v"] + self.w @ x).astype(jnp.float64)
        return {"v": v}, v


def test_step_that_changes_its_state_dtype_is_named(x64):
    model = Widening(jnp.ones((H, N_IN), jnp.float32))
    xs, ys = _data(jnp.float32)
    with pytest.raises(sp.ValidationError,
                       match=r"one step of Widening turns state leaf \['v'\] from float32 into "
                             r"float64 \(inputs float32\)") as info:
        sp.gradients(model, xs, ys, method=sp.Diagonal(), loss=sq)
    assert "\n" not in str(info.value)
    with pytest.raises(sp.ValidationError, match="turns state leaf"):
        sp.gradients(model, xs, ys, loss=sq)
