"""``snnplast.derive``: the compressed Jacobian structure of a cell's step."""

from __future__ import annotations

import dataclasses
import hashlib
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ValidationTypeError
from ._dtype import state_dtype
from ._eliminate import ORDERS
from ._graph import StepGraph, StepJacobians
from ._names import state_names, traced_param_names
from ._sjac import SJac, materialize


def classify_h(j: SJac | None) -> str:
    """Class of a state-to-state block: zero, (constant-)diagonal, block-diagonal or dense."""
    if j is None:
        return "zero"
    full = frozenset((k, k) for k in range(len(j.out_shape)))
    if j.out_shape == j.in_shape and j.ties == full:
        return "constant-diagonal" if j.const else "diagonal"
    if j.ties:
        return "block-diagonal"
    return "dense"


def classify_f(j: SJac | None) -> str:
    """Class of an immediate-influence block: zero, diagonal (per-neuron parameter), factored
    (identity between state and parameter dims: a weight), or dense."""
    if j is None:
        return "zero"
    full = frozenset((k, k) for k in range(len(j.out_shape)))
    if j.out_shape == j.in_shape and j.ties == full:
        return "diagonal"
    if j.ties:
        return "factored"
    return "dense"


@dataclasses.dataclass(frozen=True)
class Block:
    kind: str
    stored: tuple[int, ...]  # shape of the numbers kept per sample
    dense: tuple[int, ...]  # shape of the same block as a dense Jacobian

    @property
    def stored_size(self) -> int:
        return int(math.prod(self.stored)) if self.kind != "zero" else 0

    @property
    def dense_size(self) -> int:
        return int(math.prod(self.dense))


def _compression(blk: Block) -> str:
    """``stores (4, 64, 140) of 9175040: 256x smaller``."""
    ratio = blk.dense_size / max(blk.stored_size, 1)
    return f"stores {blk.stored} of {blk.dense_size}: {ratio:.0f}x smaller"


def _block(j: SJac | None, kind: str, out_shape, in_shape) -> Block:
    stored = () if j is None else tuple(j.key_size(k) for k in j.val_keys)
    return Block(kind, stored, tuple(out_shape) + tuple(in_shape))


class TraceStructure:
    """The inferred Jacobian structure of one step of a cell (per sample).

    **Attributes:**

    - `state_names`, `param_names`: readable names of the state leaves and traced parameters.
    - `H`: ``{(a, b): Block}`` for ``d state_a(t) / d state_b(t-1)``.
    - `F`: ``{(a, p): Block}`` for ``d state_a(t) / d phi_p`` (immediate influence).
    - `derived`: state leaves that are functions of other new state leaves of the same step
      (they need no trace of their own), with `K` their same-step Jacobians.
    - `cost`: ``{order: multiplications}`` of the vertex elimination for each order.
    - `graph`: the :class:`StepGraph` used to evaluate the blocks inside a transformation.
    """

    def __init__(self, cell, x, graph: StepGraph, order: str):
        self.graph = graph
        self.order = order
        self._dense_jit = None
        self.cell_name = type(cell).__name__
        state = cell.initial_state()
        self.state_names = state_names(cell)
        self._state_paths = [jax.tree_util.keystr(p) or "state"
                             for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
        self.param_names = traced_param_names(cell, graph)
        self.phi_shapes = [n.shape for n in graph.phi_nodes]
        self.itemsize = jnp.dtype(graph.s_nodes[0].dtype if graph.s_nodes else jnp.float32).itemsize
        captured = {}

        def run(p, s, xx):
            res = graph.jacobians(p, s, xx, order=order)
            captured["res"] = res
            return res.new_state

        jax.eval_shape(run, graph.split(cell), jax.tree_util.tree_leaves(state),
                       jax.tree_util.tree_leaves(x))
        res: StepJacobians = captured["res"]
        # Every order's multiplication count (planned on the structure alone) and the spent one.
        self.cost = dict(res.cost)
        self.cost.setdefault(order, self.cost["spent"])
        self.cost["auto" if order == "auto" else order] = self.cost.pop("spent")
        s_shapes, p_shapes = graph.s_shapes, self.phi_shapes
        self.H = {k: _block(j, classify_h(j), s_shapes[k[0]], s_shapes[k[1]])
                  for k, j in res.H.items()}
        self.F = {k: _block(j, classify_f(j), s_shapes[k[0]], p_shapes[k[1]])
                  for k, j in res.F.items()}
        self.derived = res.derived
        self.K = {k: _block(j, classify_h(j), s_shapes[k[0]], s_shapes[k[1]])
                  for k, j in res.K.items()}

    # ----- queries ------------------------------------------------------------------------------
    def h_class(self, a, b) -> str:
        a, b = self._state_index(a), self._state_index(b)
        return self.H[(a, b)].kind if (a, b) in self.H else "zero"

    def f_class(self, a, p) -> str:
        a, p = self._state_index(a), self._param_index(p)
        return self.F[(a, p)].kind if (a, p) in self.F else "zero"

    def _state_index(self, a) -> int:
        if isinstance(a, int):
            return a
        for k, (name, path) in enumerate(zip(self.state_names, self._state_paths)):
            if str(a) in (name, path, path.strip("[]")):
                return k
        raise KeyError(f"no state leaf {a!r}; the leaves are {self.state_names}")

    def _param_index(self, p) -> int:
        if isinstance(p, int):
            return p
        for k, name in enumerate(self.param_names):
            if name == p or name.lstrip(".") == str(p).lstrip("."):
                return k
        raise KeyError(f"no traced parameter {p!r}; they are {self.param_names}")

    @property
    def n_state(self) -> int:
        return sum(int(math.prod(s)) for s in self.graph.s_shapes)

    @property
    def n_params(self) -> int:
        return sum(int(math.prod(s)) for s in self.phi_shapes)

    @property
    def rtrl_bytes(self) -> int:
        """Bytes per sample of the dense RTRL influence matrix d state / d theta."""
        return self.n_state * self.n_params * self.itemsize

    def __repr__(self):
        lines = [(f"TraceStructure({self.cell_name}: {len(self.state_names)} state leaves "
                  f"({self.n_state} numbers), {len(self.param_names)} traced parameters "
                  f"({self.n_params} numbers); elimination order {self.order!r})")]
        refined = [(name, orig, shape) for name, orig, shape in
                   zip(self.param_names, self.graph.phi_shapes_orig, self.phi_shapes)
                   if tuple(orig) != tuple(shape)]
        if refined:
            lines.append("  views finer than dims (row-major): " + "; ".join(
                f"{name} {tuple(orig)} as {tuple(shape)}" for name, orig, shape in refined))
        sn, pn = self.state_names, self.param_names
        wa = max(len(n) for n in sn)
        wp = max([len(n) for n in pn + sn] + [8])
        lines.append("  H = d state_t / d state_{t-1}:")
        for (a, b), blk in sorted(self.H.items()):
            lines.append(f"    {sn[a]:>{wa}} <- {sn[b]:<{wp}} {blk.kind:<18} "
                         f"{_compression(blk)}")
        lines.append("  F = d state_t / d theta (immediate):")
        for (a, p), blk in sorted(self.F.items()):
            lines.append(f"    {sn[a]:>{wa}} <- {pn[p]:<{wp}} {blk.kind:<18} "
                         f"{_compression(blk)}")
        if self.derived:
            names = ", ".join(sn[a] for a in self.derived)
            lines.append(f"  derived (no trace of their own): {names}")
        for what, why in self.graph.view_report:
            lines.append(f"  kept dense-with-pattern: {what}: {why}")
        costs = ", ".join(f"{k}={v}" for k, v in self.cost.items())
        lines.append(f"  elimination multiplications: {costs}")
        return "\n".join(lines)

    # ----- dense views, for tests and debugging -------------------------------------------------
    def materialize(self, cell, state, x):
        """Dense H, F (with respect to the cell's own parameter leaves) and K at ``(state, x)``.

        **Returns:** ``(H, F)`` with ``H[(a, b)]`` of shape ``state_a.shape + state_b.shape``
        and ``F[(a, k)]`` of shape ``state_a.shape + param_k.shape`` for every parameter leaf
        ``k`` of the cell (zeros where the block is zero).
        """
        g = self.graph
        p = g.split(cell)
        s = jax.tree_util.tree_leaves(state)
        xx = jax.tree_util.tree_leaves(x)
        if self._dense_jit is None:
            self._dense_jit = jax.jit(self._dense_blocks)
        return self._dense_jit(p, s, xx)

    def _dense_blocks(self, p, s, xx):
        g = self.graph
        res = g.jacobians(p, s, xx, order=self.order)
        dtype = state_dtype(s)
        H = {}
        for a, sa in enumerate(g.s_shapes):
            for b, sb in enumerate(g.s_shapes):
                j = res.H.get((a, b))
                H[(a, b)] = materialize(j) if j is not None else jnp.zeros(sa + sb, dtype)
        # d phi / d theta, densely: the static part is small and runs once here.
        dphi = jax.jacfwd(g.phi_of)(p)
        F = {}
        for a, sa in enumerate(g.s_shapes):
            for k, pk in enumerate(g.p_shapes):
                total = jnp.zeros(sa + pk, dtype)
                for q, phi_shape in enumerate(self.phi_shapes):
                    j = res.F.get((a, q))
                    if j is None:
                        continue
                    dense_f = materialize(j).reshape(int(np.prod(sa, dtype=int)),
                                                     int(np.prod(phi_shape, dtype=int)))
                    # in the traces' dtype: a traced parameter may be a low-precision cast
                    d = dphi[q][k].reshape(int(np.prod(phi_shape, dtype=int)),
                                           int(np.prod(pk, dtype=int))).astype(dtype)
                    total = total + (dense_f @ d).reshape(sa + pk)
                F[(a, k)] = total
        return H, F


_CACHE: dict = {}


def _cache_key(cell, x):
    leaves, treedef = jax.tree_util.tree_flatten(cell)
    h = hashlib.sha1()
    for leaf in leaves:
        if eqx.is_inexact_array(leaf):
            h.update(repr((jnp.shape(leaf), str(jnp.result_type(leaf)))).encode())
        elif isinstance(leaf, jax.core.Tracer):
            raise ValidationTypeError(
                f"{type(cell).__name__}: a {leaf.dtype} array of shape {leaf.shape} in the cell "
                "is traced (the cell is an argument of a jit); the trace engine reads the values "
                "of non-trainable arrays, which shape the step: hold them as a static field of "
                "Python numbers (a tuple) and make the array inside __call__"
            )
        elif isinstance(leaf, (np.ndarray, jax.Array)):
            h.update(np.asarray(leaf).tobytes())
        else:
            h.update(repr(leaf).encode())
    xs = [(jnp.shape(a), str(jnp.result_type(a))) for a in jax.tree_util.tree_leaves(x)]
    return (type(cell), treedef, h.hexdigest(), repr(xs), jax.config.jax_enable_x64)


def step_graph(cell, x) -> StepGraph:
    """The (cached) :class:`StepGraph` of ``cell`` for inputs shaped like ``x``."""
    key = _cache_key(cell, x)
    if key not in _CACHE:
        _CACHE[key] = StepGraph(cell, x)
    return _CACHE[key]


def example_input(cell, x=None):
    if x is not None:
        return jax.tree_util.tree_map(
            lambda a: jnp.zeros(jnp.shape(a), jnp.result_type(a)), x)
    shape = getattr(cell, "input_shape", None)
    if shape is None:
        raise ValueError(
            f"cannot tell the input shape of {type(cell).__name__}: pass an example input, "
            "e.g. snnplast.derive(cell, jnp.zeros(n_in))"
        )
    dtype = next((jnp.result_type(a) for a in jax.tree_util.tree_leaves(cell)
                  if eqx.is_inexact_array(a)), jnp.float32)
    return jnp.zeros(shape, dtype)


def derive(cell, x=None, *, order: str = "auto") -> TraceStructure:
    """Infer the compressed Jacobian structure of one step of ``cell``.

    **Arguments:**

    - `cell`: any :class:`snnplast.Cell`, built in or written by a user in plain ``jax.numpy``.
    - `x`: an example input of one step (only its shape and dtype are used); built-in cells know
      their input shape and may omit it.
    - `order`: vertex elimination order: ``"auto"`` (default: the cheapest of Markowitz, forward
      and reverse, planned on the structure alone), ``"markowitz"``, ``"forward"`` or
      ``"reverse"``.

    **Returns:** a :class:`TraceStructure`. The traced graph is cached per cell structure and
    input shape.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    x = example_input(cell, x)
    return TraceStructure(cell, x, step_graph(cell, x), order)
