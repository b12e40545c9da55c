"""More neuron models written as researchers write them: plain jax.numpy / equinox, no
annotations. Each has the factory signature ``(n_in, hidden, *, key) -> Cell`` that ``fit``,
``compare`` and ``--model file.py:factory`` take. Shared by ``tests/test_user_models.py``.

``MORE_CELLS[name] = (factory, local)``: ``local`` says the cell has no coupling across neurons
from one step to the next (no recurrent weights, no normalisation over neurons), so that e-prop's
``Diagonal`` must equal BPTT on it.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

import snnplast as sp


# ----- a surrogate spike written by the user, not snnplast's -------------------------------------
@jax.custom_jvp
def spike_fn(v):
    return (v > 0).astype(v.dtype)


@spike_fn.defjvp
def _spike_fn_jvp(primals, tangents):
    (v,), (dv,) = primals, tangents
    return spike_fn(v), dv / (1.0 + 10.0 * jnp.abs(v)) ** 2


def _normal(key, shape, scale):
    return jax.random.normal(key, shape) * scale


class AdEx(sp.Cell):
    """Adaptive exponential integrate-and-fire (Brette & Gerstner 2005), reset by ``jnp.where``."""

    w: jax.Array
    a: float = eqx.field(static=True, default=0.5)
    b: float = eqx.field(static=True, default=0.2)
    delta_t: float = eqx.field(static=True, default=0.5)

    def initial_state(self):
        n = self.w.shape[0]
        return jnp.zeros(n), jnp.zeros(n)

    def __call__(self, state, x):
        v, adapt = state
        # the exponential is capped as simulators do, so a runaway potential stays finite
        expo = self.delta_t * jnp.exp(jnp.minimum((v - 1.0) / self.delta_t, 5.0))
        v = v + 0.1 * (-v + expo - adapt + self.w @ x)
        adapt = adapt + 0.05 * (self.a * v - adapt)
        z = sp.surrogates.FastSigmoid()(v - 2.0)
        fired = z > 0.5
        v = jnp.where(fired, 0.0, v)
        adapt = jnp.where(fired, adapt + self.b, adapt)
        return (v, adapt), z


class CondLIF(sp.Cell):
    """Conductance-based LIF: excitatory and inhibitory conductances as state, reversal
    potentials, positive weights through ``jax.nn.softplus``, reset with ``jax.lax.select``."""

    w_e: jax.Array
    w_i: jax.Array
    e_rev: tuple = eqx.field(static=True, default=(0.0, 2.0, -1.0))  # leak, exc, inh

    def initial_state(self):
        n = self.w_e.shape[0]
        return {"v": jnp.zeros(n), "g_e": jnp.zeros(n), "g_i": jnp.zeros(n)}

    def __call__(self, state, x):
        e_l, e_e, e_i = self.e_rev
        g_e = 0.8 * state["g_e"] + jax.nn.softplus(self.w_e) @ x
        g_i = 0.9 * state["g_i"] + jax.nn.softplus(self.w_i) @ x
        v = state["v"]
        v = v + 0.1 * ((e_l - v) + g_e * (e_e - v) + g_i * (e_i - v))
        z = spike_fn(v - 1.0)
        v = jax.lax.select(z > 0.5, jnp.full_like(v, e_l), v)
        return {"v": v, "g_e": g_e, "g_i": g_i}, z


class LearnableTau(sp.Cell):
    """LIF with a learnable membrane time constant (sigmoid of a parameter vector), a learnable
    threshold (exp of a parameter) and a subtractive reset; ``x @ W`` with ``W`` stored
    ``[n_in, n]``."""

    w: jax.Array
    tau_logit: jax.Array
    log_thr: jax.Array

    def initial_state(self):
        return jnp.zeros(self.w.shape[1])

    def __call__(self, v, x):
        alpha = jax.nn.sigmoid(self.tau_logit)
        thr = jnp.exp(self.log_thr)
        v = alpha * v + (1.0 - alpha) * (x @ self.w)
        z = spike_fn(v - thr)
        v = v - jax.lax.stop_gradient(z) * thr
        return v, z


class Refractory(sp.Cell):
    """LIF with a refractory period: a float counter in the state, counted down with
    ``jnp.maximum``, the potential clamped to rest while it runs; ``W.T @ x`` on a transposed
    weight."""

    w: jax.Array

    def initial_state(self):
        n = self.w.shape[1]
        return jnp.zeros(n), jnp.zeros(n)

    def __call__(self, state, x):
        v, ref = state
        active = ref <= 0.0
        v = jnp.where(active, 0.9 * v + jnp.matmul(self.w.T, x), 0.0)
        z = spike_fn(v - 1.0)
        s = jax.lax.stop_gradient(z)
        ref = jnp.where(s > 0.5, 3.0, jnp.maximum(ref - 1.0, 0.0))
        return (v * (1.0 - s), ref), z


class IntRefractory(sp.Cell):
    """The refractory LIF with an integer counter in its state."""

    w: jax.Array

    def initial_state(self):
        n = self.w.shape[0]
        return jnp.zeros(n), jnp.zeros(n, jnp.int32)

    def __call__(self, state, x):
        v, ref = state
        v = jnp.where(ref == 0, 0.9 * v + self.w @ x, 0.0)
        z = spike_fn(v - 1.0)
        fired = z > 0.5
        ref = jnp.where(fired, 3, jnp.maximum(ref - 1, 0)).astype(jnp.int32)
        return (jnp.where(fired, 0.0, v), ref), z


class Activations(sp.Cell):
    """A leaky rate unit mixing ``jax.nn`` activations, ``jnp.clip`` and ``jnp.maximum``,
    ``jnp.einsum`` for the input, a bias and a readout inside (its output is not its state)."""

    w: jax.Array
    bias: jax.Array
    w_out: jax.Array

    def initial_state(self):
        n = self.w.shape[0]
        return jnp.zeros(n), jnp.zeros(n)

    def __call__(self, state, x):
        h, m = state
        pre = jnp.einsum("ij,j->i", self.w, x) + self.bias
        a = (jax.nn.softplus(pre) - jax.nn.gelu(h) + jax.nn.silu(m)
             + jax.nn.relu(pre - h) - jnp.maximum(m, -0.5))
        b = jnp.tanh(jnp.clip(h + pre, -2.0, 2.0)) + jax.nn.sigmoid(m) + jax.nn.gelu(
            pre, approximate=False) + jax.nn.leaky_relu(h) + jax.nn.elu(m)
        h = 0.7 * h + 0.1 * a
        m = 0.5 * m + 0.1 * b
        return (h, m), self.w_out @ jnp.concatenate([h, m])


class NestedState(sp.Cell):
    """A nested tuple state ``((v, i), a)``: LIF with a synaptic current and adaptation."""

    w: jax.Array

    def initial_state(self):
        n = self.w.shape[0]
        return (jnp.zeros(n), jnp.zeros(n)), jnp.zeros(n)

    def __call__(self, state, x):
        (v, i), a = state
        i = 0.8 * i + self.w @ x
        v = 0.9 * v + 0.1 * i
        z = spike_fn(v - 1.0 - a)
        a = 0.95 * a + 0.1 * z
        return ((v - jax.lax.stop_gradient(z), i), a), z


class TwoCompartment(sp.Cell):
    """A two-compartment neuron: state ``[n, 2]`` (soma, dendrite); input to the dendrite,
    a learnable 2x2 coupling between compartments by ``jnp.einsum``, spike from the soma."""

    w: jax.Array
    coupling: jax.Array

    def initial_state(self):
        return jnp.zeros((self.w.shape[0], 2))

    def __call__(self, u, x):
        drive = jnp.stack([jnp.zeros(self.w.shape[0]), self.w @ x], axis=-1)
        u = 0.8 * u + 0.1 * jnp.einsum("nj,ij->ni", jnp.tanh(u), self.coupling) + drive
        z = spike_fn(u[:, 0] - 1.0)
        soma = u[:, 0] - jax.lax.stop_gradient(z)
        return u.at[:, 0].set(soma), z


class LinearLIF(sp.Cell):
    """LIF fed by an ``eqx.nn.Linear`` (with bias)."""

    linear: eqx.nn.Linear

    def initial_state(self):
        return jnp.zeros(self.linear.out_features)

    def __call__(self, v, x):
        v = 0.9 * v + self.linear(x)
        z = spike_fn(v - 1.0)
        return v - jax.lax.stop_gradient(z), z


class MLPEncoder(sp.Cell):
    """A leaky state fed by an ``eqx.nn.MLP`` encoder (relu hidden layer)."""

    mlp: eqx.nn.MLP

    def initial_state(self):
        return jnp.zeros(self.mlp.out_size)

    def __call__(self, v, x):
        v = 0.8 * v + self.mlp(x)
        z = sp.surrogates.Arctan()(v - 1.0)
        return v - jax.lax.stop_gradient(z) * v, z


class NormRNN(sp.Cell):
    """A recurrent rate unit with an ``eqx.nn.LayerNorm`` on its pre-activation: every neuron
    depends on every other through the mean and variance."""

    w: jax.Array
    norm: eqx.nn.LayerNorm

    def initial_state(self):
        return jnp.zeros(self.w.shape[0])

    def __call__(self, h, x):
        h = 0.5 * h + 0.5 * jnp.tanh(self.norm(self.w @ x + h))
        return h, h


class GRUSpike(sp.Cell):
    """An ``eqx.nn.GRUCell`` feeding a spiking layer; the state is the pair."""

    gru: eqx.nn.GRUCell
    w: jax.Array

    def initial_state(self):
        return jnp.zeros(self.gru.hidden_size), jnp.zeros(self.w.shape[0])

    def __call__(self, state, x):
        h, v = state
        h = self.gru(x, h)
        v = 0.9 * v + self.w @ h
        z = spike_fn(v - 1.0)
        return (h, v - jax.lax.stop_gradient(z)), z


class Frozen(sp.Cell):
    """A trainable bias only: the input weights are held by ``stop_gradient``, the leak is a
    static float, and one parameter is never used in the step."""

    bias: jax.Array
    unused: jax.Array
    w: jax.Array
    leak: float = eqx.field(static=True, default=0.9)

    def initial_state(self):
        return jnp.zeros(self.bias.shape[0])

    def __call__(self, v, x):
        v = self.leak * v + jax.lax.stop_gradient(self.w) @ x + self.bias
        z = spike_fn(v - 1.0)
        return v - jax.lax.stop_gradient(z), z


class TwoLayer(sp.Cell):
    """A two-layer spiking network written by hand (no ``Sequential``): the second layer reads
    the first layer's spikes of the same step."""

    w1: jax.Array
    w2: jax.Array

    def initial_state(self):
        return jnp.zeros(self.w1.shape[0]), jnp.zeros(self.w2.shape[0])

    def __call__(self, state, x):
        v1, v2 = state
        v1 = 0.9 * v1 + self.w1 @ x
        z1 = spike_fn(v1 - 1.0)
        v2 = 0.9 * v2 + self.w2 @ z1
        z2 = spike_fn(v2 - 1.0)
        s1, s2 = jax.lax.stop_gradient(z1), jax.lax.stop_gradient(z2)
        return (v1 - s1, v2 - s2), z2


class CondStep(sp.Cell):
    """A leaky unit whose update is chosen by ``jax.lax.cond`` on the input's total drive."""

    w: jax.Array

    def initial_state(self):
        return jnp.zeros(self.w.shape[0])

    def __call__(self, v, x):
        i = self.w @ x
        v = jax.lax.cond(jnp.sum(i) > 0, lambda a, b: 0.9 * a + jnp.tanh(b),
                         lambda a, b: 0.5 * a + 0.1 * b, v, i)
        return v, v


class RecurrentLIF(sp.Cell):
    """A recurrent LIF as a user writes it: ``x @ W_in + z @ W_rec`` with the last spikes kept
    in the state, ``jnp.matmul`` and a ``jnp.where`` reset."""

    w_in: jax.Array
    w_rec: jax.Array

    def initial_state(self):
        n = self.w_rec.shape[0]
        return jnp.zeros(n), jnp.zeros(n)

    def __call__(self, state, x):
        v, z = state
        v = 0.9 * v + jnp.matmul(x, self.w_in) + jnp.matmul(z, self.w_rec)
        z = spike_fn(v - 1.0)
        v = jnp.where(jax.lax.stop_gradient(z) > 0.5, 0.0, v)
        return (v, z), z


class LearnedStartLIF(sp.Cell):
    """An adaptive LIF whose initial membrane and adaptation are trained (a learned ``h0``):
    ``v0`` as it is, the adaptation through a softplus."""

    w: jax.Array
    v0: jax.Array
    a0: jax.Array

    def initial_state(self):
        return self.v0, jax.nn.softplus(self.a0)

    def __call__(self, state, x):
        v, a = state
        v = 0.9 * v + self.w @ x
        z = spike_fn(v - 1.0 - a)
        return (v - z, 0.8 * a + 0.3 * z), z


def _keys(key, k):
    return jax.random.split(key, k)


def make_adex(n_in, hidden, *, key):
    return AdEx(_normal(key, (hidden, n_in), 1.0))


def make_cond_lif(n_in, hidden, *, key):
    k1, k2 = _keys(key, 2)
    return CondLIF(_normal(k1, (hidden, n_in), 1.0), _normal(k2, (hidden, n_in), 1.0))


def make_learnable_tau(n_in, hidden, *, key):
    k1, k2, k3 = _keys(key, 3)
    return LearnableTau(_normal(k1, (n_in, hidden), 1.0), _normal(k2, (hidden,), 1.0),
                        _normal(k3, (hidden,), 0.2))


def make_refractory(n_in, hidden, *, key):
    return Refractory(_normal(key, (n_in, hidden), 1.0))


def make_int_refractory(n_in, hidden, *, key):
    return IntRefractory(_normal(key, (hidden, n_in), 1.0))


def make_activations(n_in, hidden, *, key):
    k1, k2, k3 = _keys(key, 3)
    return Activations(_normal(k1, (hidden, n_in), 1.0), _normal(k2, (hidden,), 0.5),
                       _normal(k3, (hidden, 2 * hidden), 0.5))


def make_nested_state(n_in, hidden, *, key):
    return NestedState(_normal(key, (hidden, n_in), 1.0))


def make_two_compartment(n_in, hidden, *, key):
    k1, k2 = _keys(key, 2)
    return TwoCompartment(_normal(k1, (hidden, n_in), 1.0), _normal(k2, (2, 2), 0.5))


def make_linear_lif(n_in, hidden, *, key):
    return LinearLIF(eqx.nn.Linear(n_in, hidden, key=key))


def make_mlp_encoder(n_in, hidden, *, key):
    return MLPEncoder(eqx.nn.MLP(n_in, hidden, 6, 1, activation=jax.nn.relu, key=key))


def make_norm_rnn(n_in, hidden, *, key):
    return NormRNN(_normal(key, (hidden, n_in), 1.0), eqx.nn.LayerNorm(hidden))


def make_gru_spike(n_in, hidden, *, key):
    k1, k2 = _keys(key, 2)
    return GRUSpike(eqx.nn.GRUCell(n_in, hidden, key=k1), _normal(k2, (hidden, hidden), 1.0))


def make_frozen(n_in, hidden, *, key):
    k1, k2 = _keys(key, 2)
    return Frozen(_normal(k1, (hidden,), 0.5), jnp.ones(3), _normal(k2, (hidden, n_in), 1.0))


def make_two_layer(n_in, hidden, *, key):
    k1, k2 = _keys(key, 2)
    return TwoLayer(_normal(k1, (hidden, n_in), 1.0), _normal(k2, (hidden, hidden), 1.0))


def make_cond_step(n_in, hidden, *, key):
    return CondStep(_normal(key, (hidden, n_in), 1.0))


def make_learned_start(n_in, hidden, *, key):
    k1, k2, k3 = _keys(key, 3)
    return LearnedStartLIF(_normal(k1, (hidden, n_in), 1.0), _normal(k2, (hidden,), 0.5),
                           _normal(k3, (hidden,), 0.5))


def make_recurrent_lif(n_in, hidden, *, key):
    k1, k2 = _keys(key, 2)
    return RecurrentLIF(_normal(k1, (n_in, hidden), 1.0), _normal(k2, (hidden, hidden), 0.5))


MORE_CELLS = {
    "adex": (make_adex, True),
    "cond_lif": (make_cond_lif, True),
    "learnable_tau": (make_learnable_tau, True),
    "refractory": (make_refractory, True),
    "int_refractory": (make_int_refractory, True),
    "activations": (make_activations, True),
    "nested_state": (make_nested_state, True),
    "two_compartment": (make_two_compartment, False),
    "linear_lif": (make_linear_lif, True),
    "mlp_encoder": (make_mlp_encoder, True),
    "norm_rnn": (make_norm_rnn, False),
    "gru_spike": (make_gru_spike, False),
    "frozen": (make_frozen, True),
    "two_layer": (make_two_layer, False),
    "cond_step": (make_cond_step, True),
    "recurrent_lif": (make_recurrent_lif, False),
    "learned_start": (make_learned_start, True),
}


class Compartments(sp.Cell):
    """Two compartments per neuron in one ``[n, 2]`` state, assembled with ``jnp.stack`` and
    updated in place with ``.at[:, k].add / .set``."""

    w: jax.Array

    def initial_state(self):
        return jnp.zeros((self.w.shape[0], 2))

    def __call__(self, u, x):
        soma, dend = u[:, 0], u[:, 1]
        dend = 0.9 * dend + self.w @ x
        soma = 0.8 * soma + 0.5 * jnp.tanh(dend)
        u = jnp.stack([soma, dend], axis=-1)
        z = spike_fn(soma - 1.0)
        u = u.at[:, 0].add(-jax.lax.stop_gradient(z))
        u = u.at[:, 1].set(jnp.clip(u[:, 1], -3.0, 3.0))
        return u, z


class Indexed(sp.Cell):
    """A rate unit coupled to its neighbours by position: ``jnp.pad`` and a slice (a shift),
    ``jnp.flip``, ``jnp.cumsum``, a permutation ``h[perm]`` and ``lax.dynamic_update_slice``."""

    w: jax.Array
    perm: tuple = eqx.field(static=True)  # Python ints: a jit of the cell keeps them concrete

    def initial_state(self):
        return jnp.zeros(self.w.shape[0])

    def __call__(self, h, x):
        n = h.shape[0]
        shifted = jnp.pad(h, (1, 1))[:-2]
        pre = (self.w @ x + 0.3 * shifted + 0.2 * jnp.flip(h) - 0.1 * jnp.cumsum(h) / n
               + 0.2 * h[jnp.asarray(self.perm)])
        h = jnp.tanh(pre)
        h = jax.lax.dynamic_update_slice(h, 0.5 * h[1:2], (0,))
        return h, h


def make_compartments(n_in, hidden, *, key):
    return Compartments(_normal(key, (hidden, n_in), 1.0))


def make_indexed(n_in, hidden, *, key):
    k1, k2 = _keys(key, 2)
    return Indexed(_normal(k1, (hidden, n_in), 1.0),
                   tuple(int(i) for i in jax.random.permutation(k2, hidden)))


MORE_CELLS.update({
    "compartments": (make_compartments, False),
    "indexed": (make_indexed, False),
})


# ----- a surrogate written with jax.custom_vjp, as snnTorch-style code does -----------------------
@jax.custom_vjp
def spike_vjp(v):
    return (v > 0).astype(v.dtype)


def _spike_vjp_fwd(v):
    return spike_vjp(v), v


def _spike_vjp_bwd(v, g):
    return (g / (1.0 + 10.0 * jnp.abs(v)) ** 2,)


spike_vjp.defvjp(_spike_vjp_fwd, _spike_vjp_bwd)


class VJPSpike(sp.Cell):
    """LIF whose surrogate spike is a ``jax.custom_vjp``."""

    w: jax.Array

    def initial_state(self):
        return jnp.zeros(self.w.shape[0])

    def __call__(self, v, x):
        v = 0.9 * v + self.w @ x
        z = spike_vjp(v - 1.0)
        return v - jax.lax.stop_gradient(z), z


def make_vjp_spike(n_in, hidden, *, key):
    return VJPSpike(_normal(key, (hidden, n_in), 1.0))


@jax.custom_vjp
def mean_coupled(v):
    return jnp.tanh(v)


def _mean_coupled_fwd(v):
    return jnp.tanh(v), v


def _mean_coupled_bwd(v, g):
    return (g * (1.0 - jnp.tanh(v) ** 2) + 0.1 * jnp.mean(g),)  # couples every neuron


mean_coupled.defvjp(_mean_coupled_fwd, _mean_coupled_bwd)


class VJPCoupled(sp.Cell):
    """A leaky unit squashed by a custom_vjp whose backward pass mixes the neurons."""

    w: jax.Array

    def initial_state(self):
        return jnp.zeros(self.w.shape[0])

    def __call__(self, h, x):
        h = 0.5 * h + mean_coupled(h + self.w @ x)
        return h, h


def make_vjp_coupled(n_in, hidden, *, key):
    return VJPCoupled(_normal(key, (hidden, n_in), 1.0))


MORE_CELLS["vjp_spike"] = (make_vjp_spike, True)
MORE_CELLS["vjp_coupled"] = (make_vjp_coupled, False)


# ----- loops, vmap and checkpoint inside the step -----------------------------------------------
class SubSteps(sp.Cell):
    """Three Euler sub-steps per time step by ``lax.fori_loop``."""

    w: jax.Array

    def initial_state(self):
        return jnp.zeros(self.w.shape[0])

    def __call__(self, v, x):
        i = self.w @ x
        v = jax.lax.fori_loop(0, 3, lambda k, v: v + 0.1 * (-v + jnp.tanh(i)), v)
        return v, v


class VmapNeuron(sp.Cell):
    """One neuron's update written for scalars and ``jax.vmap``-ed over the layer, with a
    learnable time constant per neuron."""

    w: jax.Array
    tau: jax.Array

    def initial_state(self):
        n = self.w.shape[0]
        return jnp.zeros(n), jnp.zeros(n)

    def __call__(self, state, x):
        def one(v, a, i, tau):
            v = jnp.exp(-1.0 / tau) * v + i - a
            z = spike_fn(v - 1.0)
            return v - jax.lax.stop_gradient(z), 0.9 * a + 0.1 * z, z

        v, a, z = jax.vmap(one)(state[0], state[1], self.w @ x, self.tau)
        return (v, a), z


class Dendrites(sp.Cell):
    """A chain of dendritic segments per neuron (state ``[segments, n]``), integrated from the
    tip to the soma by ``lax.scan(..., reverse=True)``; the step runs under ``jax.checkpoint``."""

    w: jax.Array

    def initial_state(self):
        return jnp.zeros((3, self.w.shape[0]))

    def __call__(self, d, x):
        def segment(c, dj):
            c = 0.5 * c + jnp.tanh(dj)
            return c, 0.8 * dj + 0.1 * c

        c, d = jax.checkpoint(lambda i, d: jax.lax.scan(segment, i, d, reverse=True))(
            self.w @ x, d)
        return d, spike_fn(c - 1.0)


def make_sub_steps(n_in, hidden, *, key):
    return SubSteps(_normal(key, (hidden, n_in), 1.0))


def make_vmap_neuron(n_in, hidden, *, key):
    k1, k2 = _keys(key, 2)
    return VmapNeuron(_normal(k1, (hidden, n_in), 1.0),
                      jax.random.uniform(k2, (hidden,), minval=2.0, maxval=8.0))


def make_dendrites(n_in, hidden, *, key):
    return Dendrites(_normal(key, (hidden, n_in), 1.0))


MORE_CELLS.update({
    "sub_steps": (make_sub_steps, True),
    "vmap_neuron": (make_vmap_neuron, True),
    "dendrites": (make_dendrites, False),
})
