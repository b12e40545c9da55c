"""HeadSparse traces stored for the selected heads only: memory that shrinks with the fraction.

Under :class:`snnplast.HeadSparse` the carried Jacobian is ``H~_t = lam H_t diag(m_t)``, with
``m_t`` the heads selected at step ``t``, and the gradient is ``sum_t L_{t+1} G_t`` with
``G_t = H~_t G_{t-1} + F_t`` (``L_{t+1}`` the learning signal ``d loss_{t+1} / d state_t``). Of
``G_{t-1}`` the recursion reads only the selected heads ``P_{t-1} = G_{t-1}[sel_t]``; the
unselected heads hold the bare ``F_{t-1}``, wanted once, by ``L_t``. So the carry stores
``P`` (``k`` of ``H`` heads) and the previous step's state and input, and step ``t`` works one
step behind:

    recompute H_{t-1}, F_{t-1} from (state_{t-2}, x_{t-1})
    C      = lam H_{t-1}[:, sel_{t-1}] P_{t-2}             (k heads, in the order of sel_{t-1})
    grad  += L_t[sel_{t-1}] . C  +  L_t . F_{t-1}           (the same sum as L_t . G_{t-1})
    P_{t-1} = C moved to the order of sel_t  +  F_{t-1}[sel_t]

Each step still computes one step's Jacobians (of the step before, not of its own), so the work
is the step recursion's, with the carried product and the stored trace on ``k`` heads.

Where a carried block keeps heads apart (``H[a, b]`` ties the head axes of ``a`` and ``b``:
LinearAttention's fast weights, a user's per-head recurrence) ``C`` stays on ``k`` heads; where
it mixes ``b``'s heads into ``a`` (a readout after an attention block, a recurrence across
heads) the product covers all of ``a`` and is cut to ``a``'s selection afterwards. Every state
leaf needs a head axis (its first) and no leaf may be derived; :meth:`GatheredHeadStep.build`
returns ``None`` otherwise and the step recursion over every head runs instead (correct, not
smaller).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..engine import SJac, add, coerce, compose, contract_batch, scale
from ..engine._flatten import Const
from ..engine._sjac import expand_to
from ..policies import HeadSparse, Policy
from ._online_step import Carry, OnlineStep
from ._traces import _struct_sjac


class GatheredCarry(NamedTuple):
    inner: Carry  # state_{t-1}, traces P_{t-2} on sel_{t-1} (k heads), m_t, accumulators
    prev_state: list  # state_{t-2}, each [B, ...]
    prev_x: list  # input leaves of step t-1, each [B, ...]
    prev_policy: object  # m_{t-1}, the selection P is stored on


def gather_heads(j: SJac, idx, valid=None) -> SJac:
    """``j`` restricted to output heads `idx` (output dim 0, and the input dim tied to it).

    **Arguments:**

    - `j`: a structured Jacobian whose output dim 0 is a head axis (one sample).
    - `idx`: ``[k]`` integer positions along that axis.
    - `valid`: optional ``[k]`` booleans; positions where it is false become zero.

    **Returns:** an SJac with ``k`` in place of the head axis (and of a tied input dim).
    """
    key = j.class_of_out(0)
    k = idx.shape[0]
    _, i = key
    if valid is not None and key not in j.val_keys:
        j = expand_to(j, tuple(j.val_keys) + (key,))
    val = j.val
    if key in j.val_keys:
        ax = j.val_keys.index(key)
        val = jnp.take(val, idx, axis=ax)
        if valid is not None:
            shape = [1] * val.ndim
            shape[ax] = k
            val = jnp.where(valid.reshape(shape), val, jnp.zeros((), val.dtype))
    out_shape = (k,) + tuple(j.out_shape[1:])
    in_shape = tuple(j.in_shape)
    if i is not None:
        in_shape = in_shape[:i] + (k,) + in_shape[i + 1:]
    return SJac(out_shape, in_shape, j.ties, val, tuple(j.val_keys), False)


def gather_in_heads(j: SJac, idx) -> SJac:
    """``j`` restricted to input heads `idx` (input dim 0, tied to no output dim)."""
    key = (None, 0)
    val = j.val
    if key in j.val_keys:
        val = jnp.take(val, idx, axis=j.val_keys.index(key))
    in_shape = (idx.shape[0],) + tuple(j.in_shape[1:])
    return SJac(tuple(j.out_shape), in_shape, j.ties, val, tuple(j.val_keys), False)


def scatter_in(j: SJac, i: int, idx, size: int) -> SJac:
    """``j`` (input dim `i` of ``len(idx)`` positions, free) put back at `idx` of `size`
    positions, zero elsewhere."""
    key = (None, i)
    if key not in j.val_keys:
        j = expand_to(j, tuple(j.val_keys) + (key,))
    ax = j.val_keys.index(key)
    shape = list(j.val.shape)
    shape[ax] = size
    where = (slice(None),) * ax + (idx,)
    val = jnp.zeros(shape, j.val.dtype).at[where].set(j.val)
    in_shape = tuple(j.in_shape[:i]) + (size,) + tuple(j.in_shape[i + 1:])
    return SJac(tuple(j.out_shape), in_shape, j.ties, val, tuple(j.val_keys), False)


def _scatter_add(total, g, j: SJac, idx):
    """Add the gradient ``g`` of a trace gathered on `idx` into ``total`` (of the full shape)."""
    _, i = j.class_of_out(0)
    if i is None:
        return total + g
    return total.at[(slice(None),) * i + (idx,)].add(g)


def _batched(j: SJac, batch: int) -> SJac:
    return SJac(j.out_shape, j.in_shape, j.ties,
                jnp.broadcast_to(j.val, (batch,) + j.val.shape), j.val_keys, False)


class GatheredHeadStep:
    """The step recursion of a :class:`~snnplast.HeadSparse` runner with traces stored for the
    selected heads only; the same gradients as :meth:`OnlineStep.step`."""

    def __init__(self, runner: OnlineStep):
        self.runner = runner
        self.policy: HeadSparse = runner.policy
        self.structure = runner.traces.structure
        self.shapes = runner.traces.shapes
        self.s_shapes = [tuple(s) for s in runner.graph.s_shapes]
        # Only traced leaves have heads to select: an integer leaf (a counter) has no trace.
        self.heads = sorted({self.s_shapes[a][0] for a in runner.traces.primary})

    @classmethod
    def why_not(cls, runner: OnlineStep) -> str | None:
        """Why this runner's traces cannot be stored per selected head (``None`` if they can)."""
        policy = runner.policy
        if not isinstance(policy, HeadSparse) or type(policy).carry is not HeadSparse.carry \
                or type(policy).restrict_trace is not Policy.restrict_trace:
            return "the policy is not HeadSparse"
        if runner.derived:
            return "the cell has derived state leaves"
        shapes = runner.graph.s_shapes
        if any(len(shapes[a]) == 0 for a in runner.traces.primary):
            return "a state leaf has no head axis"
        captured = {}

        def probe(p, s, xx):
            _, H, _, _ = runner.traces.blocks(p, s, xx)
            captured["H"] = H
            return 0.0

        jax.eval_shape(probe, runner._p_example, runner._s_example, runner._x_example)
        structure, tshapes = runner.traces.structure, runner.traces.shapes
        for (a, b), h in captured["H"].items():
            if (0, 0) not in h.ties:
                # Heads of b mixed into a (a readout after attention): a's trace is the
                # whole product, its own head axis cut afterwards.
                if h.class_of_in(0) != (None, 0):
                    return f"H[{a}][{b}] ties b's head axis to another axis of a"
                continue
            for (b2, p) in structure:
                if b2 != b or (a, p) not in structure:
                    continue
                ca = _struct_sjac(structure[(a, p)], tshapes[(a, p)]).class_of_out(0)
                cb = _struct_sjac(structure[(b, p)], tshapes[(b, p)]).class_of_out(0)
                if ca[1] != cb[1]:
                    return f"traces [{a}][{p}] and [{b}][{p}] tie the head axis differently"
        return None

    @classmethod
    def build(cls, runner: OnlineStep) -> GatheredHeadStep | None:
        """A gathered runner for ``runner``, or ``None`` where :meth:`why_not` objects."""
        return None if cls.why_not(runner) is not None else cls(runner)

    # ----- carry ---------------------------------------------------------------------------------
    def _selected(self, policy_state):
        return {h: self.policy.selected(policy_state, h) for h in self.heads}

    def init(self, model, batch: int, key) -> GatheredCarry:
        r = self.runner
        inner = r.init(model, batch, key)
        zeros = r.traces.zeros(r.dtype)
        traces = {}
        for (a, p), z in zeros.items():
            k = self.policy.n_selected(self.s_shapes[a][0])
            traces[(a, p)] = _batched(gather_heads(z, jnp.arange(k)), batch)
        prev_x = [jnp.zeros((batch,) + tuple(n.shape), n.dtype) for n in r.graph.x_nodes]
        return GatheredCarry(inner._replace(traces=traces, pending={}), list(inner.state), prev_x,
                             inner.policy_state)

    def stored_shapes(self) -> dict:
        """The shape of ``val`` that each trace ``(a, p)`` stores per sample (its head class
        cut to the selected heads)."""
        out = {}
        for (a, p), st in self.structure.items():
            z = _struct_sjac(st, self.shapes[(a, p)])
            k = self.policy.n_selected(self.s_shapes[a][0])
            out[(a, p)] = tuple(k if key == z.class_of_out(0) else z.key_size(key)
                                for key in z.val_keys)
        return out

    def stored_size(self) -> int:
        """Numbers per sample that the gathered traces store."""
        return sum(math.prod(shape) for shape in self.stored_shapes().values())

    # ----- one step ------------------------------------------------------------------------------
    def step(self, p_leaves, c: GatheredCarry, x_t, y_t, key) -> GatheredCarry:
        r, inner = self.runner, c.inner
        lam = self.policy.lam
        lval, d_p, outs, d_s, env, _ = r._learning_signal(p_leaves, inner, x_t, y_t)
        new_state = [jnp.broadcast_to(n.value, jnp.shape(s)) if isinstance(n, Const)
                     else env[n.id] for n, s in zip(r.graph.state_out, inner.state)]
        sel_prev = self._selected(c.prev_policy)
        sel_cur = self._selected(inner.policy_state)
        moved = {}
        for h in self.heads:
            eq = sel_cur[h][:, None] == sel_prev[h][None, :]
            # argmax of nothing is refused; with no head selected nothing moves.
            pos = jnp.argmax(eq, axis=1) if eq.size else jnp.zeros(eq.shape[0], jnp.int32)
            moved[h] = (pos, jnp.any(eq, axis=1))
        head = lambda a: self.s_shapes[a][0]

        def per_sample(s, xx, P):
            _, H, F, _ = r.traces.blocks(p_leaves, s, xx)
            # C: products on the heads sel_prev of a (H ties a's heads to b's); M: products
            # whose heads of a are all there (H mixes b's heads into a).
            C, M = {}, {}
            if lam != 0.0:
                for (a, b), h in H.items():
                    tied = (0, 0) in h.ties
                    sel = sel_prev[head(b)]
                    hg = gather_heads(h, sel) if tied else gather_in_heads(h, sel)
                    for (b2, p), g in P.items():
                        if b2 != b or (a, p) not in self.structure:
                            continue
                        term = compose(hg, g)
                        _, q = g.class_of_out(0)
                        if not tied and q is not None:
                            # b's heads were tied to a dim of p: that dim is back in full.
                            term = scatter_in(term, q, sel, self.shapes[(a, p)][1][q])
                        term = term if lam == 1.0 else scale(term, lam)
                        into = C if tied else M
                        into[(a, p)] = term if (a, p) not in into else add(into[(a, p)], term)
            C = {k: coerce(j, *self.structure[k]) for k, j in C.items()}
            M = {k: coerce(j, *self.structure[k]) for k, j in M.items()}
            new = {}
            for k, st in self.structure.items():
                terms = []
                if k in C:
                    terms.append(gather_heads(C[k], *moved[head(k[0])]))
                if k in M:
                    terms.append(gather_heads(M[k], sel_cur[head(k[0])]))
                if k in F:
                    terms.append(gather_heads(coerce(F[k], *st), sel_cur[head(k[0])]))
                total = terms[0] if terms else jax.tree_util.tree_map(jnp.zeros_like, P[k])
                for t in terms[1:]:
                    total = add(total, t)
                new[k] = coerce(total, *st)
            return C, M, {k: F[k] for k in self.structure if k in F}, new

        C, M, F, new_tr = jax.vmap(per_sample)(c.prev_state, c.prev_x, inner.traces)
        # Step 0 has no step before it: its recomputed Jacobians are of a step never taken.
        valid = inner.t > 0
        grad_phi = list(inner.grad_phi)
        for (a, q), j in C.items():
            idx = sel_prev[head(a)]
            g = contract_batch(jnp.take(d_s[a], idx, axis=1), j)
            grad_phi[q] = _scatter_add(grad_phi[q], jnp.where(valid, g, 0.0), j, idx)
        for terms in (M, F):
            for (a, q), f in terms.items():
                grad_phi[q] = grad_phi[q] + jnp.where(valid, contract_batch(d_s[a], f), 0.0)
        new_tr = jax.tree_util.tree_map(lambda v: jnp.where(valid, v, 0.0), new_tr)
        t = inner.t + 1
        x_leaves = jax.tree_util.tree_leaves(x_t)
        new_inner = Carry(
            state=new_state, traces=new_tr, k_prev=inner.k_prev,
            policy_state=self.policy.next_state(inner.policy_state, r.context, t, key),
            grad_phi=grad_phi,
            grad_direct=[a + b for a, b in zip(inner.grad_direct, d_p)],
            loss=inner.loss + lval,
            out_sum=jax.tree_util.tree_map(jnp.add, inner.out_sum, outs), t=t, pending={},
        )
        return GatheredCarry(new_inner, list(inner.state), list(x_leaves), inner.policy_state)

    def run(self, p, carry: GatheredCarry, inputs, targets, key, n_steps: int) -> GatheredCarry:
        """``n_steps`` steps, reading ``inputs [B, T, ...]`` at the step count."""
        from ._sequence import at_time

        def body(c, _):
            t = c.inner.t
            x_t, y_t = (jax.tree_util.tree_map(lambda a: at_time(a, t), z)
                        for z in (inputs, targets))
            return self.step(p, c, x_t, y_t, jax.random.fold_in(key, t)), None

        carry, _ = jax.lax.scan(body, carry, None, length=n_steps)
        return carry
