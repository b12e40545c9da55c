"""The gradient method of a training run: parsed from text in one place.

A method is what :func:`snnplast.train.loss_and_grad` dispatches on: the string ``"bptt"``, or a
transport policy object for an online method.

| text | method |
|---|---|
| ``bptt`` | backpropagation through time (the reference) |
| ``exact`` | :class:`snnplast.Exact` (full RTRL) |
| ``diagonal`` | :class:`snnplast.Diagonal` (e-prop / SnAp-1) |
| ``random-k:K`` | :class:`snnplast.RandomK` with ``k=K`` |
| ``immediate`` | :class:`snnplast.Immediate` (d = 0) |
| ``head-sparse:F`` | :class:`snnplast.HeadSparse` with ``fraction=F`` |
| ``columnar`` | :class:`snnplast.ColumnarPolicy` (Master-User) |
| ``tbptt:K`` | :class:`snnplast.TruncatedBPTT` with ``window=K`` (not online: reverse mode) |
"""

from __future__ import annotations

import math

from .. import policies
from .._truncated import TruncatedBPTT

METHODS = ("bptt", "exact", "diagonal", "random-k:K", "immediate", "head-sparse:F", "columnar",
           "tbptt:K")


def _argument(name, arg, text, kind):
    if arg is None:
        raise ValueError(f"method {text!r} needs an argument, e.g. '{name}:{'4' if kind is int else '0.5'}'")
    try:
        return kind(arg)
    except ValueError:
        raise ValueError(f"method {text!r}: {arg!r} is not a valid {kind.__name__}") from None


def parse_method(text: str, lam: float = 1.0):
    """Turn a method's text form into what the gradient dispatch receives.

    **Arguments:**

    - `text`: the method as written on the command line or stored in a config (table above).
    - `lam`: the trace decay of an online method (must be 1.0 for ``bptt``).

    **Returns:** ``"bptt"``, a :class:`snnplast.Policy` or a :class:`snnplast.TruncatedBPTT`.

    **Raises:** `ValueError` naming `text` and the methods allowed (`TypeError` for a non-string).
    """
    if not isinstance(text, str):
        raise TypeError(f"method must be a string, one of {', '.join(METHODS)}; got {text!r}")
    name, _, arg = text.strip().lower().partition(":")
    arg = arg or None
    lam = check_lam(name, lam)
    if name == "bptt" and arg is None:
        return "bptt"
    if name in ("exact", "diagonal", "immediate", "columnar") and arg is None:
        cls = {"exact": policies.Exact, "diagonal": policies.Diagonal,
               "immediate": policies.Immediate, "columnar": policies.Columnar}[name]
        return cls(lam=lam)
    if name == "random-k":
        return policies.RandomK(k=_argument(name, arg, text, int), lam=lam)
    if name == "tbptt":
        if lam != 1.0:
            raise ValueError(f"lam={lam!r} has no meaning for method {text!r} (no trace); use 1.0")
        window = _argument(name, arg, text, int)
        if window < 1:
            raise ValueError(f"method {text!r}: the window must be a positive integer")
        return TruncatedBPTT(window)
    if name == "head-sparse":
        return policies.HeadSparse(fraction=_argument(name, arg, text, float), lam=lam)
    raise ValueError(f"unknown method {text!r}; allowed: {', '.join(METHODS)}")


def check_lam(method, lam) -> float:
    """Validate ``lam``, the factor on the carried part of an online trace, for ``method``.

    BPTT carries nothing by a trace, so it accepts only the neutral value 1.0: any other value
    would be silently ignored.
    """
    if isinstance(lam, bool) or not isinstance(lam, int | float) or not math.isfinite(lam):
        raise ValueError(f"lam must be a finite number, got {lam!r}")
    if method == "bptt" and lam != 1.0:
        raise ValueError(f"lam={lam!r} has no meaning for method 'bptt' (exact gradients); use 1.0")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must lie in [0, 1], got {lam!r}")
    return float(lam)


def method_name(method) -> str:
    return method if isinstance(method, str) else method.name
