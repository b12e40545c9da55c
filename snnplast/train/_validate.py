"""Checks of a gradient method against the network it is to train, before any work starts.

A method's text parses on its own (``random-k:100000`` is a valid :class:`snnplast.RandomK`);
whether it fits the run depends on the network: ``k`` hidden units can be sampled only out of
``hidden``. The checks read the parsed policy's fields by name, so they hold for any policy
with such a field, built in or a user's, however its text form is parsed.
"""

from __future__ import annotations

from collections.abc import Callable


def _k(value, hidden: int, name: str) -> None:
    if value > hidden:
        raise ValueError(
            f"method {name!r}: k={value} is larger than the hidden size {hidden}; "
            f"allowed k in 0..{hidden}"
        )


def _fraction(value, hidden: int, name: str) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(
            f"method {name!r}: fraction={value} of the heads; allowed: a fraction in (0, 1]"
        )


# A policy field -> its check against the run. A new constraint is one line here.
_FIELD_CHECKS: dict[str, Callable[[object, int, str], None]] = {
    "k": _k,
    "fraction": _fraction,
}


def check_method_fits(method, hidden: int, text: str | None = None):
    """Raise a one-line `ValueError` if the parsed `method` cannot train a layer of `hidden` units.

    **Arguments:**

    - `method`: what :func:`parse_method` returned (``"bptt"`` or a policy).
    - `hidden`: neurons in the hidden layer.
    - `text`: the method as the user wrote it, for the message (default: the policy's name).

    **Returns:** `method`.
    """
    if isinstance(method, str):
        return method
    name = text if text is not None else getattr(method, "name", type(method).__name__)
    for field, check in _FIELD_CHECKS.items():
        value = getattr(method, field, None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            check(value, hidden, name)
    return method
