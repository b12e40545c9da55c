"""``snnplast.gradients`` called in a loop compiles once (snnplast/_compiled.py), and a cached
program never serves a call it does not fit: another integer mask, another method, another
loss or other shapes get their own, each equal to the gradient traced in place."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import snnplast as sp
from snnplast import _compiled


class Masked(sp.Cell):
    """A leaky layer whose integer index array picks which input each neuron reads."""

    w: jax.Array
    pick: jax.Array  # int32 [n]: the engine reads its values

    def initial_state(self):
        return jnp.zeros(self.w.shape[0])

    def __call__(self, v, x):
        v = 0.8 * v + jnp.tanh(self.w @ x + x[self.pick])
        return v, v


def _sq(out, y):
    return jnp.sum((out - y) ** 2)


def _problem(pick=(0, 1, 2, 0)):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    cell = Masked(jax.random.normal(k1, (4, 3)), jnp.asarray(pick, jnp.int32))
    return cell, jax.random.normal(k2, (6, 3)), jax.random.normal(k3, (6, 4))


def _compiles():
    events = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, _d, **_kw: events.append(event)
        if event == "/jax/core/compile/backend_compile_duration" else None)  # fmt: skip
    return events


def _in_place(cell, xs, ys, method, loss=_sq):
    # the same call traced in place (tracers among the inputs make compiled_call run it as it
    # is); the cell closed over, so that its integer array stays a value
    return jax.jit(lambda x, y: sp.gradients(cell, x, y, loss=loss, method=method))(xs, ys)


def _close(a, b):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["bptt", sp.Diagonal()], ids=["bptt", "diagonal"])
def test_a_second_call_compiles_nothing_and_gives_the_same_gradient(method):
    _compiled.clear()
    cell, xs, ys = _problem()
    first = sp.gradients(cell, xs, ys, loss=_sq, method=method)
    # a new but equal policy object, new arrays of the same values: the same program
    copy, xs_copy = jax.tree_util.tree_map(jnp.array, cell), jnp.array(xs)
    events = _compiles()
    again = sp.gradients(copy, xs_copy, ys, loss=_sq,
                         method=sp.Diagonal() if method != "bptt" else "bptt")
    assert events == []
    _close(first, again)
    _close(first, _in_place(cell, xs, ys, method))


def test_other_integer_values_methods_losses_and_shapes_get_their_own_program():
    _compiled.clear()
    cell, xs, ys = _problem()
    other = _problem(pick=(2, 2, 1, 0))[0]  # same structure and float weights, other picks
    sp.gradients(cell, xs, ys, loss=_sq, method=sp.Diagonal())
    g_other = sp.gradients(other, xs, ys, loss=_sq, method=sp.Diagonal())
    _close(g_other, _in_place(other, xs, ys, sp.Diagonal()))
    assert not np.allclose(np.asarray(g_other.w),
                           np.asarray(sp.gradients(cell, xs, ys, loss=_sq,
                                                   method=sp.Diagonal()).w))
    half = lambda o, y: 0.5 * _sq(o, y)
    _close(sp.gradients(cell, xs, ys, loss=half, method=sp.Diagonal()),
           jax.tree_util.tree_map(lambda g: 0.5 * g,
                                  sp.gradients(cell, xs, ys, loss=_sq, method=sp.Diagonal())))
    _close(sp.gradients(cell, xs, ys, loss=_sq, method=sp.Diagonal(lam=0.5)),
           _in_place(cell, xs, ys, sp.Diagonal(lam=0.5)))
    _close(sp.gradients(cell, xs[:4], ys[:4], loss=_sq),
           _in_place(cell, xs[:4], ys[:4], "bptt"))
    assert len(_compiled._programs) == 5
    # a typed PRNG key (jax.random.key) is an argument like a raw one
    for key in (jax.random.key(3), jax.random.PRNGKey(3)):
        _close(sp.gradients(cell, xs, ys, loss=_sq, method=sp.RandomK(2), key=key),
               jax.jit(lambda x, y, k: sp.gradients(cell, x, y, loss=_sq, method=sp.RandomK(2),
                                                    key=k))(xs, ys, key))
    assert len(_compiled._programs) == 7


def test_the_cache_is_bounded_and_an_unhashable_leaf_runs_in_place(monkeypatch):
    _compiled.clear()
    monkeypatch.setattr(_compiled, "MAX_PROGRAMS", 3)
    cell, xs, ys = _problem()
    n = _compiled.MAX_PROGRAMS + 2
    long_x, long_y = jnp.ones((n, 3)), jnp.zeros((n, 4))
    for t in range(n):
        sp.gradients(cell, long_x[: t + 1], long_y[: t + 1], loss=_sq)
    assert len(_compiled._programs) == _compiled.MAX_PROGRAMS
    sp.gradients.cache_clear()
    assert len(_compiled._programs) == 0

    class Scale:  # defines equality but no hash: unhashable
        def __init__(self, value):
            self.value = value

        def __eq__(self, other):
            return isinstance(other, Scale) and other.value == self.value

    class Weighted(eqx.Module):  # a loss holding such a leaf cannot be keyed
        scale: Scale

        def __call__(self, out, y):
            return self.scale.value * _sq(out, y)

    _compiled.clear()
    g = sp.gradients(cell, xs, ys, loss=Weighted(Scale(2.0)))
    assert len(_compiled._programs) == 0
    _close(g, jax.tree_util.tree_map(lambda a: 2.0 * a, sp.gradients(cell, xs, ys, loss=_sq)))
