"""One interpreter over the flattened step, with a rule table per walk.

Every walk over the equations of a :class:`~._flatten.Flat` (evaluating the step, evaluating its
static part, propagating constants and structural patterns, emitting Jacobian edges) is the same
loop, shaped like JAX's ``core.eval_jaxpr``: read each equation's inputs from an environment,
look up the rule for the equation (by its kind: ``"op"``, ``"value"``, ``"nondiff"``,
``"alias"``), write what the rule returns to the outputs. A walk is its rule table.
"""

from __future__ import annotations

from collections.abc import Callable

from . import _jaxcompat as jc
from ._flatten import Const, FlatEqn

# rule(n_eqn, eqn, input values) -> output values, or None to leave the outputs unwritten.
# An input not in the environment is read as None.
Rule = Callable[[int, FlatEqn, list], list | None]


def read(env: dict, a):
    """The value of `a` (a :class:`Const` or a node) in `env`; ``None`` where unknown."""
    return a.value if isinstance(a, Const) else env.get(a.id)


def interpret(eqns, env: dict, rules: dict[str, Rule], *, select=None) -> dict:
    """Run `rules` over `eqns` in program order, writing into `env` (node id -> value).

    **Arguments:**

    - `eqns`: the flattened equations.
    - `env`: the values known before the walk (updated in place).
    - `rules`: ``{kind: rule}``; an equation of a kind without a rule is skipped.
    - `select`: optional ``select(eqn) -> bool``: equations it refuses are skipped.

    **Returns:** `env`.
    """
    for n, e in enumerate(eqns):
        rule = rules.get(e.kind)
        if rule is None or (select is not None and not select(e)):
            continue
        outs = rule(n, e, [read(env, a) for a in e.inputs])
        if outs is not None:
            for o, v in zip(e.outputs, outs):
                env[o.id] = v
    return env


def _bind(n, e, ins):
    return jc.bind(e.primitive, e.params, *ins)


def _identity(n, e, ins):
    return ins


# Evaluating the step: a "nondiff" equation is a copy that carries no derivative; an "alias" has
# no value of its own (its output is computed by the "value" equation it stands beside).
EVALUATE: dict[str, Rule] = {"op": _bind, "value": _bind, "nondiff": _identity}


def when_known(rules: dict[str, Rule]) -> dict[str, Rule]:
    """`rules` applied only to equations whose inputs are all known (the others are skipped)."""
    def known(rule):
        return lambda n, e, ins: None if any(v is None for v in ins) else rule(n, e, ins)

    return {kind: known(rule) for kind, rule in rules.items()}
