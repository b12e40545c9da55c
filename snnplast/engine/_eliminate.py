"""Vertex elimination over a graph of structured Jacobians.

Eliminating an intermediate vertex ``v`` replaces every path ``p -> v -> s`` by one edge
``E[s, p] += E[s, v] @ E[v, p]`` (Griewank & Walther's vertex elimination; Lohoff et al. apply it
to eligibility traces). The order does not change the result, only its cost; the cost of each
product is known from the structure alone (:func:`~._sjac.compose_cost`), so orders can be
compared before any number is computed.
"""

from __future__ import annotations

from collections import defaultdict

from ._sjac import abstract, add, compose, compose_cost

ORDERS = ("auto", "markowitz", "forward", "reverse")


class Graph:
    """Edges ``E[(succ, pred)]`` between vertex ids, with adjacency kept in both directions."""

    def __init__(self):
        self.edges: dict = {}
        self.preds: dict = defaultdict(set)
        self.succs: dict = defaultdict(set)

    def add_edge(self, succ, pred, jac) -> None:
        key = (succ, pred)
        if key in self.edges:
            self.edges[key] = add(self.edges[key], jac)
        else:
            self.edges[key] = jac
            self.preds[succ].add(pred)
            self.succs[pred].add(succ)

    def remove_vertex(self, v) -> None:
        for p in self.preds.pop(v, set()):
            self.succs[p].discard(v)
            del self.edges[(v, p)]
        for s in self.succs.pop(v, set()):
            self.preds[s].discard(v)
            del self.edges[(s, v)]

    def elimination_cost(self, v) -> int:
        return sum(
            compose_cost(self.edges[(s, v)], self.edges[(v, p)])
            for s in self.succs[v]
            for p in self.preds[v]
        )

    def eliminate(self, v) -> int:
        cost = 0
        products = []
        for s in list(self.succs[v]):
            for p in list(self.preds[v]):
                a, b = self.edges[(s, v)], self.edges[(v, p)]
                cost += compose_cost(a, b)
                products.append((s, p, compose(a, b)))
        self.remove_vertex(v)
        for s, p, jac in products:
            self.add_edge(s, p, jac)
        return cost


def _sequence(graph: Graph, intermediates: list, order: str) -> tuple[list, int]:
    """Plan an elimination on the structure alone: the vertex sequence and its cost."""
    plan = Graph()
    for (s, p), jac in graph.edges.items():
        plan.add_edge(s, p, abstract(jac))
    if order == "forward":
        seq = list(intermediates)
    elif order == "reverse":
        seq = list(reversed(intermediates))
    else:
        position = {v: n for n, v in enumerate(intermediates)}
        remaining, seq = set(intermediates), []
        cost = {u: plan.elimination_cost(u) for u in remaining}
        total = 0
        while remaining:
            v = min(remaining, key=lambda u: (cost[u], position[u]))
            touched = (plan.preds[v] | plan.succs[v]) & remaining
            seq.append(v)
            remaining.discard(v)
            total += plan.eliminate(v)
            # Only the neighbours of v have new edges, so only their costs change.
            for u in touched - {v}:
                cost[u] = plan.elimination_cost(u)
        return seq, total
    return seq, _cost_of(graph, seq)


def _cost_of(graph: Graph, seq: list) -> int:
    plan = Graph()
    for (s, p), jac in graph.edges.items():
        plan.add_edge(s, p, abstract(jac))
    return sum(plan.eliminate(v) for v in seq)


def plan(graph: Graph, intermediates: list, order: str = "auto") -> tuple[list, dict]:
    """Choose the elimination sequence without computing any number.

    **Returns:** ``(sequence, costs)`` where ``costs`` maps each planned order to its count of
    multiplications. ``"auto"`` plans Markowitz, forward and reverse and keeps the cheapest.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    candidates = ("markowitz", "forward", "reverse") if order == "auto" else (order,)
    plans = {o: _sequence(graph, intermediates, o) for o in candidates}
    best = min(candidates, key=lambda o: (plans[o][1], candidates.index(o)))
    return plans[best][0], {o: c for o, (_, c) in plans.items()}


def eliminate(graph: Graph, intermediates: list, order: str = "auto") -> dict:
    """Eliminate ``intermediates`` (given in topological order) from ``graph`` in place.

    **Arguments:**

    - `order`: ``"forward"`` (topological), ``"reverse"``, ``"markowitz"`` (greedily the vertex
      whose elimination costs the fewest multiplications now: Markowitz's rule weighted by the
      true cost of each structured product rather than by vertex degree), or ``"auto"``
      (default): plan all three on the structure alone and run the cheapest. Greedy Markowitz
      is usually cheapest but not always (it loses to reverse order on attention blocks, where
      fill-in from early cheap eliminations grows), and planning costs no numeric work.

    **Returns:** ``{order: multiplications}`` for every order planned, and ``"spent"``: the
    multiplications actually performed.
    """
    seq, costs = plan(graph, intermediates, order)
    costs["spent"] = sum(graph.eliminate(v) for v in seq)
    return costs
