"""Neuron models written the way a user would: plain jax.numpy, no annotations. Shared by the
trace-engine and policy tests."""

import equinox as eqx
import jax
import jax.numpy as jnp

import snnplast as sp
from snnplast.surrogates import FastSigmoid


class Izhikevich(sp.Cell):
    """Izhikevich (2003) with a surrogate spike and a detached reset."""

    w: jax.Array
    a: float = eqx.field(static=True, default=0.02)
    b: float = eqx.field(static=True, default=0.2)
    c: float = eqx.field(static=True, default=-65.0)
    d: float = eqx.field(static=True, default=8.0)

    def __init__(self, n_in, n, key):
        self.w = jax.random.normal(key, (n, n_in)) * 5.0

    def initial_state(self):
        n = self.w.shape[0]
        return (jnp.full(n, -65.0), jnp.full(n, -13.0))

    def __call__(self, state, x):
        v, u = state
        i = self.w @ x
        v_new = v + 0.5 * (0.04 * v**2 + 5.0 * v + 140.0 - u + i)
        u_new = u + self.a * (self.b * v - u)
        spike = FastSigmoid(slope=0.5)(v_new - 30.0)
        s = jax.lax.stop_gradient(spike)
        v_new = s * self.c + (1.0 - s) * v_new
        u_new = u_new + self.d * s
        return (v_new, u_new), spike


class ResonateAndFire(sp.Cell):
    """Izhikevich's resonate-and-fire neuron: a damped oscillator (x, y) with a spike on y."""

    w: jax.Array
    omega: jax.Array

    def __init__(self, n_in, n, key):
        k1, k2 = jax.random.split(key)
        self.w = jax.random.normal(k1, (n, n_in))
        self.omega = jax.random.uniform(k2, (n,), minval=0.5, maxval=2.0)

    def initial_state(self):
        n = self.w.shape[0]
        return (jnp.zeros(n), jnp.zeros(n))

    def __call__(self, state, x):
        re, im = state
        dt, damp = 0.1, -0.1
        re_new = re + dt * (damp * re - self.omega * im + self.w @ x)
        im_new = im + dt * (self.omega * re + damp * im)
        spike = FastSigmoid()(im_new - 1.0)
        return (re_new, im_new), spike


class ScratchGRU(sp.Cell):
    """A GRU written from scratch, with a jnp.where clipping its candidate."""

    wz: jax.Array
    wr: jax.Array
    wh: jax.Array
    uz: jax.Array
    ur: jax.Array
    uh: jax.Array

    def __init__(self, n_in, n, key):
        ks = jax.random.split(key, 6)
        self.wz, self.wr, self.wh = (jax.random.normal(k, (n, n_in)) * 0.5 for k in ks[:3])
        self.uz, self.ur, self.uh = (jax.random.normal(k, (n, n)) * 0.5 for k in ks[3:])

    def initial_state(self):
        return jnp.zeros(self.uz.shape[0])

    def __call__(self, h, x):
        z = jax.nn.sigmoid(self.wz @ x + self.uz @ h)
        r = jax.nn.sigmoid(self.wr @ x + self.ur @ h)
        cand = jnp.tanh(self.wh @ x + self.uh @ (r * h))
        cand = jnp.where(cand > 0.9, 0.9 + 0.1 * (cand - 0.9), cand)
        h = (1.0 - z) * h + z * cand
        return h, h


USER_CELLS = {
    "izhikevich": lambda key, n_in, n: Izhikevich(n_in, n, key),
    "resonate_and_fire": lambda key, n_in, n: ResonateAndFire(n_in, n, key),
    "scratch_gru": lambda key, n_in, n: ScratchGRU(n_in, n, key),
}


class SlicedGate(sp.Cell):
    """A gated cell that slices one stacked matmul by hand: ``x[:n]``, ``x[n:2n]``, ``x[2n:]``."""

    w: jax.Array
    u: jax.Array
    b: jax.Array

    def __init__(self, n_in, n, key):
        k1, k2 = jax.random.split(key)
        self.w = jax.random.normal(k1, (3 * n, n_in)) * 0.5
        self.u = jax.random.normal(k2, (3 * n, n)) * 0.5
        self.b = jnp.zeros(3 * n)

    def initial_state(self):
        return jnp.zeros(self.u.shape[1])

    def __call__(self, h, x):
        n = self.u.shape[1]
        pre = self.w @ x + self.u @ h + self.b
        keep = jax.nn.sigmoid(pre[:n])
        write = jax.nn.sigmoid(pre[n : 2 * n])
        cand = jnp.tanh(pre[2 * n :])
        h = keep * h + write * cand
        return h, h


class MultiHead(sp.Cell):
    """A recurrent cell with per-head state ``[heads, d]``: one input projection reshaped into
    heads, a recurrent matrix per head, and an output that mixes the heads."""

    w: jax.Array
    r: jax.Array
    w_out: jax.Array
    heads: int = eqx.field(static=True)

    def __init__(self, n_in, n, key, heads=2):
        k1, k2, k3 = jax.random.split(key, 3)
        d = n // heads
        self.w = jax.random.normal(k1, (heads * d, n_in)) * 0.5
        self.r = jax.random.normal(k2, (heads, d, d)) * 0.5
        self.w_out = jax.random.normal(k3, (n, heads * d)) * 0.5
        self.heads = heads

    def initial_state(self):
        return jnp.zeros(self.r.shape[:2])

    def __call__(self, h, x):
        q = (self.w @ x).reshape(self.heads, -1)
        h = jnp.tanh(jnp.einsum("hij,hj->hi", self.r, h) + q)
        return h, self.w_out @ h.reshape(-1)


class EqxLSTM(sp.Cell):
    """Equinox's own LSTMCell wrapped as a user would: a field holding it."""

    lstm: eqx.nn.LSTMCell

    def __init__(self, n_in, n, key):
        self.lstm = eqx.nn.LSTMCell(n_in, n, key=key)

    def initial_state(self):
        n = self.lstm.hidden_size
        return (jnp.zeros(n), jnp.zeros(n))

    def __call__(self, state, x):
        h, c = self.lstm(x, state)
        return (h, c), h


class EqxGRU(sp.Cell):
    """Equinox's own GRUCell wrapped as a user would."""

    gru: eqx.nn.GRUCell

    def __init__(self, n_in, n, key):
        self.gru = eqx.nn.GRUCell(n_in, n, key=key)

    def initial_state(self):
        return jnp.zeros(self.gru.hidden_size)

    def __call__(self, h, x):
        h = self.gru(x, h)
        return h, h


class ReshapeClash(sp.Cell):
    """Views of one vector that admit no common refinement: ``(2, 6)`` and ``(3, 4)``."""

    w: jax.Array

    def __init__(self, n_in, n, key):
        self.w = jax.random.normal(key, (12, n_in)) * 0.5

    def initial_state(self):
        return jnp.zeros(12)

    def __call__(self, h, x):
        y = self.w @ x
        m = jnp.tanh(y.reshape(2, 6))
        k = jax.nn.sigmoid(y.reshape(3, 4))
        h = 0.5 * h + m.reshape(-1) * k.reshape(-1)
        return h, h


class ConcatGates(sp.Cell):
    """Two gates from separate input weights, concatenated, added to a stacked recurrent
    product, and split again."""

    wa: jax.Array
    wb: jax.Array
    u: jax.Array

    def __init__(self, n_in, n, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.wa = jax.random.normal(k1, (n, n_in)) * 0.5
        self.wb = jax.random.normal(k2, (n, n_in)) * 0.5
        self.u = jax.random.normal(k3, (2 * n, n)) * 0.5

    def initial_state(self):
        return jnp.zeros(self.u.shape[1])

    def __call__(self, h, x):
        pre = jnp.concatenate([self.wa @ x, self.wb @ x]) + self.u @ h
        keep, cand = jnp.split(pre, 2)
        h = jax.nn.sigmoid(keep) * h + jnp.tanh(cand)
        return h, h


def make_multi_head(n_in, hidden, *, key):
    """A factory as ``snnplast inspect --cell tests/user_cells.py:make_multi_head`` calls it."""
    return MultiHead(n_in, hidden, key, heads=4)


def make_sliced_gate(n_in, hidden, *, key):
    return SlicedGate(n_in, hidden, key)


USER_CELLS.update({
    "reshape_clash": lambda key, n_in, n: ReshapeClash(n_in, n, key),
    "concat_gates": lambda key, n_in, n: ConcatGates(n_in, n, key),
    "sliced_gate": lambda key, n_in, n: SlicedGate(n_in, n, key),
    "multi_head": lambda key, n_in, n: MultiHead(n_in, n, key),
    "eqx_lstm": lambda key, n_in, n: EqxLSTM(n_in, n, key),
    "eqx_gru": lambda key, n_in, n: EqxGRU(n_in, n, key),
})
