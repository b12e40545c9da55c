"""The gradient method of a training run: parsed from text in one place.

A method is what :func:`snnplast.train.loss_and_grad` dispatches on. Today only ``"bptt"``
exists; online methods (transport policies such as ``exact``, ``diagonal``, ``random-k:K``)
will be parsed here into their policy objects, so the CLI and the config never change shape.
"""

from __future__ import annotations

import math

METHODS = ("bptt",)


def parse_method(text: str):
    """Turn a method's text form (``"bptt"``) into what the gradient dispatch receives.

    **Arguments:**

    - `text`: the method as written on the command line or stored in a config.

    **Returns:** the method: the string ``"bptt"`` for backpropagation through time.

    **Raises:** `ValueError` naming `text` and the methods allowed (`TypeError` for a non-string).
    """
    if not isinstance(text, str):
        raise TypeError(f"method must be a string, one of {', '.join(METHODS)}; got {text!r}")
    name = text.strip().lower()
    if name in METHODS:
        return name
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
    return float(lam)
