"""Where a traced parameter's immediate effect on a step's output passes through the new state.

A step's loss depends on a traced parameter ``phi_p`` at the same step (the *direct* term
``d loss_t / d phi_p`` with the old state held) along paths of the step graph from ``phi_p`` to
the outputs. When every such path crosses exactly one new state leaf of a set ``C`` (a vertex cut
of state leaves none of which lies downstream of another), the chain rule splits the direct
term over the cut:

    d loss_t / d phi_p = sum_{a in C} e_t[a] F_t[a, p],    e_t[a] = d loss_t / d new_state[a]

with ``F_t[a, p]`` the immediate influence the traces already use and ``e_t[a]`` the
derivative of the loss with respect to a perturbation added where the new state leaf is
computed (:meth:`StepGraph.values` with ``perturb``). The online engine then forms the direct
term in the same product as the trace term (``snnplast/online/_blocked.py``) instead of a
weight-gradient product at every step. A recurrent LIF layer under a readout: ``W_in`` and
``W_rec`` are cut by the potential ``v``, the readout's weight by its own state.
"""

from __future__ import annotations

from ._flatten import Node
from ._rules import has_zero_derivative


def _successors(graph) -> dict:
    """``{node id: ids of the values it has a derivative path to in one equation}``: the
    edges the engine differentiates along (see ``StepGraph._classify``)."""
    succ: dict = {}
    flat = graph.flat
    for e in flat.eqns:
        if e.kind not in ("op", "alias") or (e.primitive and has_zero_derivative(e.primitive)):
            continue
        outs = [o.id for o in e.outputs if o.id in graph.vd]
        for a in e.inputs:
            if isinstance(a, Node) and a.id in graph.vd and a.id not in flat.nondiff:
                succ.setdefault(a.id, set()).update(outs)
    return succ


def _reach(succ: dict, start, blocked=frozenset()) -> set:
    """Ids reachable from `start` along ``succ`` in one or more edges, never entering `blocked`."""
    seen: set = set()
    todo = [s for s in start]
    while todo:
        n = todo.pop()
        for m in succ.get(n, ()):
            if m not in seen and m not in blocked:
                seen.add(m)
                todo.append(m)
    return seen


def direct_cut(graph, p: int) -> tuple[int, ...] | None:
    """The state leaves that cut every path from traced parameter `p` to the step's outputs.

    **Arguments:**

    - `graph`: a :class:`StepGraph`.
    - `p`: index into ``graph.phi_nodes``.

    **Returns:** the sorted state-leaf indices ``C`` (only those whose new value reaches an
    output; empty when `p` does not reach the outputs at this step), or ``None`` when no such
    cut exists: some path reaches an output without crossing a new state leaf, or two leaves
    share one value. The cut is the first leaves on the way where they cut every path (an
    output layer's state after the potential is then left out: its paths from `p` cross the
    potential), else the last ones before the outputs.
    """
    succ = _successors(graph)
    phi = graph.phi_nodes[p].id
    outs = {n.id for n in graph.out if isinstance(n, Node)}
    if phi in outs:
        return None
    leaves_of: dict = {}
    for a, n in enumerate(graph.state_out):
        if isinstance(n, Node):
            leaves_of.setdefault(n.id, []).append(a)
    reached = _reach(succ, [phi])
    candidates = [n for n in leaves_of if n in reached and (n in outs or _reach(succ, [n]) & outs)]
    below = {n: _reach(succ, [n]) for n in candidates}
    # Two antichains to try (no path crosses two members of either, so nothing is counted
    # twice): the first state values on the way, else the last ones before the outputs (an
    # LSTM's output gate reaches h without crossing c, but every path crosses h).
    first = [n for n in candidates if not any(m != n and n in below[m] for m in candidates)]
    last = [n for n in candidates if not any(m != n and m in below[n] for m in candidates)]
    for cut in (first, last):
        if any(len(leaves_of[n]) > 1 for n in cut):
            continue
        if not _reach(succ, [phi], blocked=set(cut)) & outs:
            return tuple(sorted(leaves_of[n][0] for n in cut))
    return None
