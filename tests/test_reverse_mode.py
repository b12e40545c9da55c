"""A ``lax.while_loop`` in a step: JAX cannot differentiate it in reverse mode, which every
gradient method needs, so each says so in one line naming the loop's place in the user's code
(before: JAX's message from deep inside the trace, with no model or line in it)."""

import jax
import jax.numpy as jnp
import pytest
from jax import lax

import snnplast as sp
from snnplast.train import loss_and_grad

N_IN, H, T = 3, 4, 5


def sq(out, y):
    return jnp.sum((out - y) ** 2)


class SubSteps(sp.Cell):
    """Three Euler sub-steps run by a while_loop on the potential."""

    w: jax.Array

    def initial_state(self):
        return jnp.zeros(self.w.shape[0])

    def __call__(self, v, x):
        i = self.w @ x
        _, v = lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, 0.9 * c[1] + i), (0, v))
        return v, v


class CountsOnly(SubSteps):
    """A while_loop that counts (an integer, no derivative): reverse mode is not needed in it."""

    def __call__(self, v, x):
        i = self.w @ x
        level = lax.stop_gradient(jnp.sum(jnp.abs(i)))
        n = lax.while_loop(lambda k: (k < 5) & (k < level), lambda k: k + 1, 0)
        v = 0.9 * v + i * (1.0 + 0.1 * n)
        return v, v


def _data():
    return jnp.ones((T, N_IN)), jnp.ones((T, H))


# The online methods' trace engine first warns that it differentiates the loop densely.
@pytest.mark.filterwarnings("ignore:snnplast. no Jacobian rule for primitive 'while'")
@pytest.mark.parametrize("method", ["bptt", sp.Diagonal(), sp.TruncatedBPTT(2)],
                         ids=["bptt", "diagonal", "truncated"])
def test_while_loop_named_in_one_line(method):
    xs, ys = _data()
    with pytest.raises(sp.ValidationError,
                       match=r"the step of SubSteps runs a lax.while_loop at "
                             r".*test_reverse_mode.py:\d+.*fori_loop Python int bounds") as info:
        sp.gradients(SubSteps(jnp.ones((H, N_IN))), xs, ys, method=method, loss=sq)
    assert "\n" not in str(info.value)


@pytest.mark.filterwarnings("ignore:snnplast. no Jacobian rule for primitive 'while'")
def test_trainer_step_names_the_loop():
    """fit's gradient (compiled, as the trainer compiles it) refuses in the same line."""
    x, y = jnp.ones((2, T, N_IN)), jnp.zeros((2,), jnp.int32)
    step = jax.jit(lambda m, x, y: loss_and_grad(m, x, y, sp.Diagonal())[0][0])
    with pytest.raises(sp.ValidationError, match="the step of SubSteps runs a lax.while_loop"):
        step(SubSteps(jnp.ones((H, N_IN))), x, y)


def test_loop_without_derivative_still_trains():
    xs, ys = _data()
    g = sp.gradients(CountsOnly(jnp.ones((H, N_IN)) * 0.3), xs, ys, method="bptt", loss=sq)
    assert jnp.all(jnp.isfinite(g.w))
