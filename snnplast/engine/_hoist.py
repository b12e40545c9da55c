"""The part of a step that depends on the input only, evaluated for many steps at once.

In a step ``cell(state, x_t)`` some values depend on the input and the parameters but not on
the state: a layer's input projection ``W_in x_t``, and whatever follows from it alone. They
do not need the recursion: for a chunk of ``K`` steps they can be computed before it, for all
``K x B`` samples in one batched operation (one ``[K B, I] @ [I, H]`` matmul instead of ``K``
products of ``B`` rows), and each step then reads its values instead of computing them.

:func:`plan_hoist` finds that part of the flattened step (:class:`HoistPlan`): the equations
whose outputs depend on an input but on no state leaf, with the values the rest of the step
reads from them (the equations that remain, the Jacobian rules of the part, the step's
outputs). Equations that compute a new state leaf stay in the step (a perturbation of the
state, :meth:`StepGraph.values`, is added where they run), and so does every equation that
depends on a traced parameter a caller still differentiates (``fixed`` says which it
does not): the values handed in are constants to a derivative taken inside the step. The
plan exists only when the part holds a contraction (``dot_general``, a convolution): moving
elementwise work out of the loop would cost a record of its values and save little.
"""

from __future__ import annotations

import dataclasses

from ._flatten import Node

# Primitives worth a record of their values per step: contractions, whose batched form over
# K steps is one large matmul instead of K small ones.
CONTRACTIONS = frozenset({"dot_general", "conv_general_dilated"})


@dataclasses.dataclass(frozen=True)
class HoistPlan:
    """The input-only part of a step.

    - `skip`: ``id`` of the equations computed before the steps (and skipped in them).
    - `needed`: ids of the nodes whose values the steps read, in a fixed order.
    """

    skip: frozenset
    needed: tuple


def plan_hoist(graph, fixed) -> HoistPlan | None:
    """The input-only part of ``graph``'s step that may be computed outside the steps.

    **Arguments:**

    - `graph`: a :class:`~snnplast.engine.StepGraph`.
    - `fixed`: indices of traced parameters that the step holds fixed in its derivatives
      (``None``: the step differentiates no parameter); equations that depend on another
      traced parameter stay in the step.

    **Returns:** a :class:`HoistPlan`, or ``None`` when the part holds no contraction.
    """
    flat = graph.flat
    state = {n.id for n in graph.s_nodes}
    inputs = {n.id for n in graph.x_nodes}
    # Traced parameters the step still differentiates: nothing hoisted may depend on them.
    phi_ids = {n.id for n in graph.phi_nodes}
    held = phi_ids if fixed is None else {graph.phi_nodes[q].id for q in fixed}
    live = phi_ids - held
    new_state = {n.id for n in graph.state_out if isinstance(n, Node)}
    on_state, on_input = set(state), set(inputs)
    skip, produced = [], set()
    for e in flat.eqns:
        ins = [a.id for a in e.inputs if isinstance(a, Node)]
        outs = [o.id for o in e.outputs]
        if any(i in on_state or i in live for i in ins):
            on_state.update(outs)
            continue
        if not any(i in on_input for i in ins):
            continue  # static: computed in the step as before
        on_input.update(outs)
        if any(o in new_state for o in outs):
            on_state.update(outs)  # a new state leaf stays where a perturbation can reach it
            continue
        skip.append(e)
        produced.update(outs)
    if any(o.id in on_state for e in skip for o in e.outputs):
        return None  # a value also written by a state-dependent equation (an alias): keep all
    if not any(e.primitive is not None and e.primitive.name in CONTRACTIONS for e in skip):
        return None
    skipped = {id(e) for e in skip}
    needed: list = []

    def need(a):
        if isinstance(a, Node) and a.id in produced and a.id not in needed:
            needed.append(a.id)

    for e in flat.eqns:
        # An equation inside a cond's branch reads the branch index too (to zero its
        # Jacobians when another branch is taken).
        guards = [index for index, _ in e.guard]
        if id(e) not in skipped:
            for a in list(e.inputs) + guards:
                need(a)
        elif e.kind == "op" and any(o.id in graph.vd for o in e.outputs):
            # Its Jacobian rule still runs in the step, reading its inputs and outputs.
            for a in list(e.inputs) + list(e.outputs) + guards:
                need(a)
    for a in graph.out:
        need(a)
    return HoistPlan(frozenset(skipped), tuple(needed))
