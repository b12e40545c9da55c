"""The gradient method of a training run: parsed from text in one place.

A method is what :func:`snnplast.train.loss_and_grad` dispatches on: the string ``"bptt"``, or a
transport policy object for an online method. The text forms of the online methods come from
the policies' registry (:func:`snnplast.policies.register_method`), so a registered policy is a
method here, on the command line and in its help at once.
"""

from __future__ import annotations

from .._errors import ValidationError, ValidationTypeError, did_you_mean
from .._truncated import TruncatedBPTT
from ..policies import METHODS as POLICY_METHODS
from ..policies import check_lam, policy_from_text, register_method

REFERENCE = "bptt"
_REFERENCE_HELP = "backpropagation through time, the reference"

# Not a trace policy (loss_and_grad differentiates it in reverse mode): registered all the same.
register_method(
    "tbptt",
    TruncatedBPTT,
    "each step's loss through its last K steps only (sliding-window T-BPTT, not online)",
    arg="window",
    kind=int,
    takes_lam=False,
)


def method_usages() -> tuple[str, ...]:
    """Every method's text form, ``bptt`` first: ``("bptt", "exact", ..., "random-k:K", ...)``."""
    return (REFERENCE, *(entry.usage for entry in POLICY_METHODS.values()))


def method_help() -> list[tuple[str, str]]:
    """``(text form, help line)`` of every method, for help texts and tables."""
    return [(REFERENCE, _REFERENCE_HELP)] + [
        (entry.usage, f"{entry.policy.__name__}: {entry.help}")
        for entry in POLICY_METHODS.values()
    ]


def parse_method(text: str, lam: float = 1.0):
    """Turn a method's text form into what the gradient dispatch receives.

    **Arguments:**

    - `text`: ``bptt`` or a registered method's text (``diagonal``, ``random-k:4``; see
      :func:`method_help`), as written on the command line or stored in a config.
    - `lam`: the trace decay of an online method (must be 1.0 for ``bptt``).

    **Returns:** ``"bptt"``, a :class:`snnplast.Policy` or a :class:`snnplast.TruncatedBPTT`.

    **Raises:** `ValidationError` (a `ValueError`) naming `text` and the methods allowed; a
    `TypeError` one for a non-string.
    """
    if not isinstance(text, str):
        raise ValidationTypeError(
            f"method must be a string, one of {', '.join(method_usages())}; got {text!r}"
        )
    name, _, arg = text.strip().lower().partition(":")
    if name == REFERENCE and not arg:
        # BPTT carries nothing by a trace: any lam other than the neutral 1.0 would be ignored.
        if check_lam(lam) != 1.0:
            raise ValidationError(
                f"lam={lam!r} has no meaning for method 'bptt' (exact gradients); use 1.0"
            )
        return REFERENCE
    if name not in POLICY_METHODS:
        raise ValidationError(
            f"unknown method {text!r}; allowed: {', '.join(method_usages())}"
            + did_you_mean(name, [REFERENCE, *POLICY_METHODS])
        )
    return policy_from_text(text, check_lam(lam))
