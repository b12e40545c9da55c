"""Tiny cells that each call one function a researcher might use inside a step (jax.nn,
jax.numpy, jax.scipy.special, lax, jax.random, equinox modules, jax's wrappers), in a realistic
place: on the membrane, on the input current, on the weights or on a per-neuron parameter.
Shared by ``tests/test_primitives.py``.

``CASES[name] = (build, local)``: ``build(key) -> Cell``; ``local`` says nothing couples two
neurons (or two compartments of one neuron) from one step to the next, so ``Diagonal`` must equal
BPTT on it.
"""
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.special as jss
import numpy as np
from jax import lax

N_IN, H, STEPS = 3, 4, 5


import snnplast as sp


class FnCell(sp.Cell):
    """``f(p, state, x) -> (state, output)`` with parameters ``p`` and ``init() -> state``."""

    p: dict
    f: object = eqx.field(static=True)
    init: object = eqx.field(static=True)
    int_inputs: int = eqx.field(static=True, default=0)  # > 0: inputs are token ids below it

    def initial_state(self):
        return self.init()

    def __call__(self, s, x):
        return self.f(self.p, s, x)


def _base_params(key):
    k = jax.random.split(key, 8)
    return {
        "w": jax.random.normal(k[0], (H, N_IN)) * 0.6,
        "tau": jax.random.uniform(k[1], (H,), minval=0.5, maxval=0.95),
        "b": jax.random.normal(k[2], (H,)) * 0.3,
    }


def v0():
    return jnp.asarray(np.linspace(0.1, 0.7, H))


def _v2():
    return jnp.asarray(np.linspace(0.1, 0.8, 2 * H).reshape(H, 2))


CASES = {}


def case(name, local, extra=None, init=v0):
    def deco(f):
        def build(key):
            p = _base_params(key)
            if extra is not None:
                p.update(extra(jax.random.fold_in(key, 99)))
            return FnCell(p, f, init)
        CASES[name] = (build, local)
        return f
    return deco


def cur(p, x):
    return p["w"] @ x


def leak(p, v, x):
    return p["tau"] * v + cur(p, x)


# ---- jax.nn ----------------------------------------------------------------------------------
@case("nn.softmax(out)", True)
def _(p, v, x):
    v = leak(p, v, x); return v, jax.nn.softmax(v)

@case("nn.softmax(wta)", False)
def _(p, v, x):
    v = leak(p, v, x) - 0.5 * jax.nn.softmax(v); return v, v

@case("nn.log_softmax", False)
def _(p, v, x):
    v = leak(p, v, x) + 0.1 * jax.nn.log_softmax(v); return v, v

@case("nn.logsumexp", False)
def _(p, v, x):
    v = leak(p, v, x) - 0.1 * jax.nn.logsumexp(v); return v, v

@case("nn.one_hot(argmax)", True)
def _(p, v, x):
    z = jax.nn.one_hot(jnp.argmax(v), H, dtype=v.dtype)
    v = leak(p, v, x) - z * v; return v, v

for _n, _f in [("relu6", jax.nn.relu6), ("hard_tanh", jax.nn.hard_tanh),
               ("hard_sigmoid", jax.nn.hard_sigmoid), ("celu", jax.nn.celu), ("selu", jax.nn.selu),
               ("softplus", jax.nn.softplus), ("soft_sign", jax.nn.soft_sign),
               ("gelu_exact", lambda a: jax.nn.gelu(a, approximate=False)),
               ("silu", jax.nn.silu), ("mish", getattr(jax.nn, "mish", jax.nn.silu)),
               ("log_sigmoid", jax.nn.log_sigmoid), ("sparse_plus", getattr(jax.nn, "sparse_plus", jax.nn.softplus)),
               ("squareplus", getattr(jax.nn, "squareplus", jax.nn.softplus))]:
    def _mk(f):
        def g(p, v, x):
            v = p["tau"] * v + f(cur(p, x) + 0.5 * v); return v, f(v)
        return g
    case(f"nn.{_n}", True)(_mk(_f))

@case("nn.glu", True)
def _(p, v, x):
    v = p["tau"] * v + jax.nn.glu(jnp.concatenate([cur(p, x), v])); return v, v

@case("nn.standardize(input)", True)
def _(p, v, x):
    v = p["tau"] * v + jax.nn.standardize(cur(p, x)); return v, v

@case("nn.standardize(state)", False)
def _(p, v, x):
    v = p["tau"] * v + cur(p, x) + 0.3 * jax.nn.standardize(v, epsilon=1e-3); return v, v

# ---- reductions ---------------------------------------------------------------------------------
for _n, _f in [("mean", jnp.mean), ("var", jnp.var), ("std", jnp.std), ("max", jnp.max),
               ("min", jnp.min), ("linalg.norm", jnp.linalg.norm), ("prod", lambda a: jnp.prod(jnp.tanh(a) + 1.5)),
               ("maximum.reduce", lambda a: jnp.maximum.reduce(a))]:
    def _mk(f):
        def g(p, v, x):
            v = leak(p, v, x) - 0.1 * f(v); return v, v
        return g
    case(f"jnp.{_n}", False)(_mk(_f))

@case("jnp.prod(compartments)", True)
def _(p, v, x):
    v = p["tau"] * v + jnp.prod(jnp.stack([cur(p, x), jnp.tanh(v) + 1.0], -1), axis=-1); return v, v

@case("jnp.any/all", True)
def _(p, v, x):
    v = leak(p, v, x)
    v = jnp.where(jnp.any(v > 1.0) & ~jnp.all(v > 1.0), 0.9 * v, v); return v, v

@case("jnp.linalg.norm(w rows)", True)
def _(p, v, x):
    v = p["tau"] * v + (p["w"] / jnp.linalg.norm(p["w"], axis=1, keepdims=True)) @ x; return v, v

# ---- scans / sorting ----------------------------------------------------------------------------
for _n, _f in [("cumprod", lambda a: jnp.cumprod(jax.nn.sigmoid(a))),
               ("cummax", lambda a: lax.cummax(a)),
               ("cumsum(rev)", lambda a: jnp.cumsum(a[::-1])[::-1]),
               ("cumlogsumexp", lambda a: lax.cumlogsumexp(a)),
               ("sort", jnp.sort), ("roll", lambda a: jnp.roll(a, 1)), ("flip", jnp.flip),
               ("take", lambda a: jnp.take(a, jnp.array([2, 0, 3, 1]))),
               ("convolve", lambda a: jnp.convolve(a, jnp.array([0.25, 0.5, 0.25]), mode="same"))]:
    def _mk(f):
        def g(p, v, x):
            v = leak(p, v, x) + 0.1 * f(v); return v, v
        return g
    case(f"jnp.{_n}", False)(_mk(_f))

@case("jnp.sort(out)", True)
def _(p, v, x):
    v = leak(p, v, x); return v, jnp.sort(v)

@case("jnp.argsort(rank)", True)
def _(p, v, x):
    rank = jnp.argsort(jnp.argsort(v)).astype(v.dtype)
    v = p["tau"] * v + cur(p, x) * (1.0 + rank / H); return v, v

@case("jnp.tile/repeat(param)", True, extra=lambda k: {"b2": jax.random.normal(k, (H // 2,))})
def _(p, v, x):
    v = leak(p, v, x) + jnp.tile(p["b2"], 2) + 0.5 * jnp.repeat(p["b2"], 2); return v, v

@case("jnp.take_along_axis", False, init=lambda: jnp.asarray(np.linspace(0.1, 0.8, 2 * H).reshape(H, 2)))
def _(p, v, x):
    idx = jnp.array([[1, 0]] * H)
    i = cur(p, x)
    v = p["tau"][:, None] * jnp.take_along_axis(v, idx, axis=1) + i[:, None]
    return v, v[:, 0]

@case("jnp.where(reset)", True)
def _(p, v, x):
    v = leak(p, v, x); return jnp.where(v > 0.8, 0.0, v), v

@case("jnp.clip(array bounds)", True, extra=lambda k: {"lo": -jnp.ones(H) * 0.5, "hi": jnp.ones(H) * 0.6})
def _(p, v, x):
    v = jnp.clip(leak(p, v, x), p["lo"], p["hi"]); return v, v

@case("jnp.heaviside", True)
def _(p, v, x):
    v = leak(p, v, x); z = jnp.heaviside(v - 0.5, 0.5); return v - 0.3 * z, z + 0.1 * v

for _n, _f in [("sinc", jnp.sinc), ("exp2", lambda a: jnp.exp2(0.3 * a)), ("log2", lambda a: jnp.log2(1 + a * a)),
               ("log10", lambda a: jnp.log10(1 + a * a)), ("power(float)", lambda a: jnp.power(jax.nn.softplus(a), 1.5)),
               ("sqrt(safe where)", lambda a: jnp.where(a > 0, jnp.sqrt(jnp.where(a > 0, a, 1.0)), 0.0)),
               ("sqrt(x^2+eps)", lambda a: jnp.sqrt(a * a + 1e-6)),
               ("nan_to_num", lambda a: jnp.nan_to_num(jnp.log(a))),
               ("isnan", lambda a: jnp.where(jnp.isnan(jnp.log(a)), 0.0, a)),
               ("interp", lambda a: jnp.interp(a, jnp.linspace(-2, 2, 7), jnp.tanh(jnp.linspace(-2, 2, 7)))),
               ("scipy.special.expit", jss.expit), ("scipy.special.logit", lambda a: jss.logit(jax.nn.sigmoid(a) * 0.8 + 0.1)),
               ("scipy.special.erf", jss.erf), ("scipy.special.gammaln", lambda a: jss.gammaln(2.0 + a * a)),
               ("scipy.special.xlogy", lambda a: jss.xlogy(a, a * a + 1.0)),
               ("scipy.special.xlogy(x=0)", lambda a: jss.xlogy(jnp.maximum(a, 0.0), jnp.abs(a) + 1.0)),
               ("lax.clamp", lambda a: lax.clamp(-0.5, a, 0.7)), ("lax.rsqrt", lambda a: lax.rsqrt(1 + a * a)),
               ("lax.cbrt", lambda a: lax.cbrt(a + 3.0)), ("lax.integer_pow", lambda a: a ** 3),
               ("jnp.remainder", lambda a: jnp.remainder(a, 0.7)), ("lax.rem", lambda a: lax.rem(a, 0.7)),
               ("lax.sign", lambda a: a * lax.sign(a)), ("jnp.round", lambda a: a - 0.1 * jnp.round(a)),
               ("jnp.abs", jnp.abs), ("jnp.arctan2", lambda a: jnp.arctan2(a, 1.5)),
               ("jnp.logaddexp", lambda a: jnp.logaddexp(a, 0.3)),
               ("scipy.special.erf_inv", lambda a: jax.scipy.special.erfinv(jnp.tanh(a) * 0.9)),
               ("scipy.special.digamma", lambda a: jax.scipy.special.digamma(2.0 + a * a))]:
    def _mk(f):
        def g(p, v, x):
            v = p["tau"] * v + cur(p, x) + 0.3 * f(v); return v, v
        return g
    case(_n if "." in _n else f"jnp.{_n}", True)(_mk(_f))

@case("lax.select_n(int pred)", True)
def _(p, v, x):
    i = cur(p, x)
    k = (v > 0).astype(jnp.int32) + (v > 0.6).astype(jnp.int32)
    v = lax.select_n(k, p["tau"] * v + i, 0.5 * v + i, jnp.zeros_like(v)); return v, v

@case("lax.population_count", True)
def _(p, v, x):
    bits = (v > 0).astype(jnp.int32) * 5 + (v > 0.5).astype(jnp.int32) * 2
    c = lax.population_count(bits).astype(v.dtype)
    v = leak(p, v, x) * (1 + 0.1 * c); return v, v

# ---- matrices -----------------------------------------------------------------------------------
@case("jnp.einsum(ij,j)", False, extra=lambda k: {"R": jax.random.normal(k, (H, H)) * 0.2})
def _(p, v, x):
    v = p["tau"] * v + jnp.einsum("ij,j->i", p["R"], v) + jnp.einsum("ij,j->i", p["w"], x); return v, v

@case("jnp.einsum(i,i->i)", True)
def _(p, v, x):
    v = jnp.einsum("i,i->i", p["tau"], v) + jnp.einsum("ij,j", p["w"], x); return v, v

@case("jnp.einsum(ij,ij->i)", False, extra=lambda k: {"M": jax.random.normal(k, (H, 2)) * 0.3},
      init=lambda: jnp.asarray(np.linspace(0.1, 0.8, 2 * H).reshape(H, 2)))
def _(p, v, x):
    i = cur(p, x)
    s = jnp.einsum("ij,ij->i", p["M"], v)
    v = p["tau"][:, None] * v + (i + 0.2 * s)[:, None]; return v, s

@case("jnp.outer", True, extra=lambda k: {"a": jax.random.normal(k, (H,)), "c": jax.random.normal(jax.random.fold_in(k, 1), (N_IN,))})
def _(p, v, x):
    v = p["tau"] * v + jnp.outer(p["a"], p["c"]) @ x; return v, v

@case("jnp.kron", False, extra=lambda k: {"A": jax.random.normal(k, (2, 2)) * 0.3})
def _(p, v, x):
    v = leak(p, v, x) + jnp.kron(p["A"], jnp.eye(2)) @ v; return v, v

@case("jnp.diag", True, extra=lambda k: {"d": jax.random.normal(k, (H,)) * 0.3})
def _(p, v, x):
    v = leak(p, v, x) + jnp.diag(p["d"]) @ v; return v, v

@case("jnp.diagonal/trace", True, extra=lambda k: {"M": jax.random.normal(k, (H, H)) * 0.3})
def _(p, v, x):
    v = leak(p, v, x) + jnp.diagonal(p["M"]) * v + 0.1 * jnp.trace(p["M"]) * v; return v, v

@case("jnp.tril/triu", False, extra=lambda k: {"R": jax.random.normal(k, (H, H)) * 0.3})
def _(p, v, x):
    v = leak(p, v, x) + jnp.tril(p["R"], -1) @ v + 0.5 * jnp.triu(p["R"], 1) @ jnp.tanh(v); return v, v

@case("jnp.polyval", True, extra=lambda k: {"c": jnp.array([0.1, -0.2, 0.5, 0.0])})
def _(p, v, x):
    v = p["tau"] * v + cur(p, x) + jnp.polyval(p["c"], v); return v, v

@case("jnp.linalg.solve", False, extra=lambda k: {"A": jnp.eye(H) * 2.0 + jax.random.normal(k, (H, H)) * 0.2})
def _(p, v, x):
    v = p["tau"] * v + jnp.linalg.solve(p["A"], cur(p, x) + 0.3 * v); return v, v

@case("cholesky/triangular_solve(2x2)", False, extra=lambda k: {"C": jnp.array([[1.0, 0.3], [0.2, 0.8]])},
      init=lambda: jnp.asarray(np.linspace(0.1, 0.8, 2 * H).reshape(H, 2)))
def _(p, v, x):
    A = p["C"] @ p["C"].T + jnp.eye(2)
    L = jnp.linalg.cholesky(A)
    r = jax.scipy.linalg.solve_triangular(L, v.T, lower=True).T
    v = p["tau"][:, None] * v + 0.3 * r + cur(p, x)[:, None]; return v, v[:, 0]

# ---- control flow -------------------------------------------------------------------------------
@case("lax.while_loop(3)", True)
def _(p, v, x):
    i = cur(p, x)
    _, v = lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] + 0.3 * (-c[1] * p["tau"] + i)), (0, v))
    return v, v

# Reverse mode cannot go through a while_loop: its Jacobians are checked against jacfwd, and
# every gradient method (BPTT, and the online methods' one-step learning signal) refuses in one
# line naming the loop (snnplast/_reverse_mode.py).
FORWARD_ONLY = {"lax.while_loop(3)"}


@case("lax.fori_loop(40)", True)
def _(p, v, x):
    i = cur(p, x)
    v = lax.fori_loop(0, 40, lambda k, u: u + 0.05 * (-u + jnp.tanh(i + p["tau"] * u)), v); return v, v

@case("lax.scan(40)", True)
def _(p, v, x):
    i = cur(p, x)
    v, _ = lax.scan(lambda u, _: (u + 0.05 * (-u + jnp.tanh(i + p["tau"] * u)), None), v, None, length=40)
    return v, v

@case("lax.cond", True)
def _(p, v, x):
    i = cur(p, x)
    v = lax.cond(jnp.sum(i) > 0, lambda u: p["tau"] * u + i, lambda u: 0.5 * u + i, v); return v, v

@case("lax.switch", True)
def _(p, v, x):
    i = cur(p, x)
    k = jnp.clip(jnp.sum(x > 0), 0, 2)
    v = lax.switch(k, [lambda u: p["tau"] * u + i, lambda u: 0.5 * u + i, lambda u: u]  , v); return v, v

# ---- wrappers -----------------------------------------------------------------------------------
@case("jax.checkpoint", True)
def _(p, v, x):
    v = jax.checkpoint(lambda u: p["tau"] * u + jnp.tanh(cur(p, x)))(v); return v, v

@case("jax.named_call", True)
def _(p, v, x):
    v = jax.named_call(lambda u: p["tau"] * u + jnp.tanh(cur(p, x)), name="lif")(v); return v, v

@case("jax.named_scope", True)
def _(p, v, x):
    with jax.named_scope("lif"):
        v = leak(p, v, x)
    return v, v

@case("jax.ensure_compile_time_eval", True)
def _(p, v, x):
    with jax.ensure_compile_time_eval():
        c = jnp.exp(-1.0 / jnp.arange(1.0, H + 1.0))
    v = c * v + cur(p, x); return v, v

@jax.jit
def _jit_helper(tau, v, i):
    return tau * v + jnp.tanh(i)

@case("jax.jit helper", True)
def _(p, v, x):
    v = _jit_helper(p["tau"], v, cur(p, x)); return v, v

@case("jax.vmap(per neuron)", True)
def _(p, v, x):
    v = jax.vmap(lambda t, u, i: t * u + jnp.tanh(i))(p["tau"], v, cur(p, x)); return v, v

# ---- random -------------------------------------------------------------------------------------
@case("jax.random(uint32 key state)", True, init=lambda: (v0(), jax.random.PRNGKey(0)))
def _(p, s, x):
    v, key = s
    key, sub = jax.random.split(key)
    v = leak(p, v, x) + 0.1 * jax.random.normal(sub, (H,), v.dtype)
    return (v, key), v

@case("jax.random(typed key state)", True, init=lambda: (v0(), jax.random.key(0)))
def _(p, s, x):
    v, key = s
    key, sub = jax.random.split(key)
    z = jax.random.bernoulli(sub, jax.nn.sigmoid(v)).astype(v.dtype)
    v = leak(p, v, x) - 0.2 * z + 0.05 * jax.random.uniform(sub, (H,), v.dtype)
    return (v, key), v

# ---- equinox modules ----------------------------------------------------------------------------
def _eqx(name, local, make, f):
    CASES[name] = (lambda key: FnCell({**_base_params(key), "m": make(jax.random.fold_in(key, 7))}, f, v0), local)

_eqx("eqx.nn.Conv1d", False, lambda k: eqx.nn.Conv1d(1, 1, 3, padding=1, key=k),
     lambda p, v, x: ((vv := p["tau"] * v + cur(p, x) + 0.3 * p["m"](v[None])[0]), vv))
_eqx("eqx.nn.Sequential", True, lambda k: eqx.nn.Sequential([eqx.nn.Linear(N_IN, H, key=k), eqx.nn.Lambda(jnp.tanh)]),
     lambda p, v, x: ((vv := p["tau"] * v + p["m"](x)), vv))
_eqx("eqx.nn.RMSNorm", False, lambda k: eqx.nn.RMSNorm(H),
     lambda p, v, x: ((vv := p["tau"] * v + cur(p, x) + 0.2 * p["m"](v)), vv))
_eqx("eqx.nn.PReLU", True, lambda k: eqx.nn.PReLU(0.2),
     lambda p, v, x: ((vv := p["tau"] * v + p["m"](cur(p, x) + 0.5 * v)), vv))
_eqx("eqx.nn.Lambda/Identity/Dropout", True,
     lambda k: eqx.nn.Sequential([eqx.nn.Identity(), eqx.nn.Dropout(0.5, inference=True), eqx.nn.Lambda(jax.nn.softplus)]),
     lambda p, v, x: ((vv := p["tau"] * v + p["m"](cur(p, x))), vv))
_eqx("eqx.nn.MultiheadAttention(memory)", True,
     lambda k: {"att": eqx.nn.MultiheadAttention(2, 4, key=k), "mem": jax.random.normal(jax.random.fold_in(k, 1), (5, 4))},
     lambda p, v, x: ((vv := p["tau"] * v + p["m"]["att"](cur(p, x)[None], p["m"]["mem"], p["m"]["mem"])[0]), vv))
_eqx("eqx.nn.MultiheadAttention(self over state)", False,
     lambda k: eqx.nn.MultiheadAttention(1, 1, key=k),
     lambda p, v, x: ((vv := p["tau"] * v + cur(p, x) + 0.3 * p["m"](v[:, None], v[:, None], v[:, None])[:, 0]), vv))


# ---- ops along one axis on a [n, 2] state, grouped ----------------------------------------------
@case("axis_ops", False, init=_v2)
def _(p, v, x):
    i = cur(p, x)[:, None]
    u = (jnp.cumprod(jax.nn.sigmoid(v), axis=1) + lax.cummax(jnp.tanh(v), axis=1)
         + 0.2 * lax.cumlogsumexp(v, axis=1, reverse=True) + 0.3 * jnp.sort(v, axis=1))
    rank = jnp.argsort(v, axis=1).astype(v.dtype)
    v = 0.5 * u + (1.0 + 0.1 * rank) * i + 0.2 * jnp.prod(jnp.tanh(v) + 1.2, axis=1, keepdims=True)
    return v, v[:, 0]


# ---- per-neuron indexing under jax.vmap (gather / scatter with batch dims), grouped ------------
@case("vmapped_indexing", False, init=_v2)
def _(p, v, x):
    i = cur(p, x)
    k = (v[:, 0] > v[:, 1]).astype(jnp.int32)  # which compartment leads, per neuron
    lead = jax.vmap(lambda u, j: u[j])(v, k)
    swapped = jnp.take_along_axis(v, jnp.stack([1 - k, k], -1), axis=1)
    v = jax.vmap(lambda u, j, a: u.at[j].set(a))(0.6 * swapped, k, 0.5 * lead + i)
    return v, v[:, 0]


# ---- the default tests' two cells: several fixes each, to keep the default suite short ----------
@case("compartment_rules", False, init=_v2,
      extra=lambda k: {"C": jnp.array([[1.0, 0.3], [0.2, 0.8]])})
def _(p, v, x):
    """Ops along the compartments, vmapped per-neuron indexing, a triangular solve."""
    i = cur(p, x)
    u = (jnp.cumprod(jax.nn.sigmoid(v), axis=1) + lax.cummax(jnp.tanh(v), axis=1)
         + 0.3 * jnp.sort(v, axis=1) + 0.1 * jnp.argsort(v, axis=1).astype(v.dtype))
    k = (v[:, 0] > v[:, 1]).astype(jnp.int32)
    lead = jax.vmap(lambda row, j: row[j])(v, k)
    u = jax.vmap(lambda row, j, a: row.at[j].set(a))(0.5 * u, k, 0.5 * lead + i)
    L = jnp.linalg.cholesky(p["C"] @ p["C"].T + jnp.eye(2))
    r = jax.scipy.linalg.solve_triangular(L, v.T, lower=True).T
    v = u + 0.3 * r + 0.2 * jnp.prod(jnp.tanh(v) + 1.2, axis=1, keepdims=True)
    return v, v[:, 0]


def _crashed_before(key):
    """An int64 token through eqx.nn.Embedding, jnp.linalg.solve, bfloat16 math."""
    k1, k2 = jax.random.split(key)
    p = {**_base_params(key), "emb": eqx.nn.Embedding(7, H, key=k1),
         "A": jnp.eye(H) * 2.0 + jax.random.normal(k2, (H, H)) * 0.2}

    def f(p, v, tok):
        i = p["emb"](tok)
        low = jnp.tanh(v.astype(jnp.bfloat16)).astype(v.dtype)
        v = p["tau"] * v + jnp.linalg.solve(p["A"], i + 0.3 * v) + 0.3 * low
        return v, v

    return FnCell(p, f, v0, int_inputs=7)


CASES["crashed_before"] = (_crashed_before, False)


# ---- lower precision inside a float64 step -----------------------------------------------------
# JAX's reverse mode rounds a cotangent to the cast's precision on the way back; the engine keeps
# its Jacobians in the state's precision. The two agree to the low precision's resolution
# (LOW_PRECISION gives its epsilon), not to float64's.
LOW_PRECISION = {}


def _low(name, dtype, f):
    def g(p, v, x):
        v = p["tau"] * v + cur(p, x) + 0.3 * f(v); return v, v
    case(name, True)(g)
    LOW_PRECISION[name] = float(jnp.finfo(dtype).eps)


_low("cast float16", jnp.float16, lambda a: a.astype(jnp.float16).astype(a.dtype))
_low("cast bfloat16 math", jnp.bfloat16, lambda a: jnp.tanh(a.astype(jnp.bfloat16)).astype(a.dtype))
_low("cast float32 math", jnp.float32, lambda a: jnp.tanh(a.astype(jnp.float32)).astype(a.dtype))
_low("lax.reduce_precision", jnp.bfloat16,
     lambda a: lax.reduce_precision(a, exponent_bits=8, mantissa_bits=7))
LOW_PRECISION["crashed_before"] = LOW_PRECISION["cast bfloat16 math"]


@case("bfloat16 matmul", True)
def _(p, v, x):
    """The weight cast in the step: its traced parameter is bfloat16, the traces float64."""
    i = (p["w"].astype(jnp.bfloat16) @ x.astype(jnp.bfloat16)).astype(v.dtype)
    v = p["tau"] * v + i; return v, v


LOW_PRECISION["bfloat16 matmul"] = LOW_PRECISION["cast bfloat16 math"]


# ---- an integer input: eqx.nn.Embedding ---------------------------------------------------------
def _embedding(key):
    p = {**_base_params(key), "emb": eqx.nn.Embedding(7, H, key=jax.random.fold_in(key, 7))}
    return FnCell(p, lambda p, v, tok: ((u := p["tau"] * v + p["emb"](tok)), u), v0, int_inputs=7)


CASES["eqx.nn.Embedding(int input)"] = (_embedding, True)


def problem(cell, key):
    """Inputs ``[STEPS, N_IN]`` (token ids ``[STEPS]`` for an integer-input cell) and random
    targets shaped like the cell's outputs."""
    k1, k2 = jax.random.split(key)
    if cell.int_inputs:
        xs = jax.random.randint(k1, (STEPS,), 0, cell.int_inputs)
    else:
        xs = jax.random.normal(k1, (STEPS, N_IN), jnp.float64) * 1.5
    _, outs = jax.lax.scan(lambda s, x: cell(s, x), cell.initial_state(), xs)
    return xs, jax.random.normal(k2, outs.shape, jnp.float64)
