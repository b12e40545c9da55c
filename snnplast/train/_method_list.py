"""A list of gradient methods to compare: checked, canonical, each with its run's config."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import equinox as eqx

from .._errors import ValidationError, ValidationTypeError
from ._config import TrainConfig
from ._method import REFERENCE, parse_method


def parse_methods(methods: str | Sequence[str], lam: float = 1.0) -> tuple[str, ...]:
    """Check a list of methods before any work starts; return their canonical text forms.

    **Arguments:**

    - `methods`: method texts (see :func:`parse_method`), or one comma-separated string.
    - `lam`: the trace decay the online methods will run with (``bptt`` always uses 1.0).

    **Returns:** the methods, stripped and lower-cased, in the order given.

    **Raises:** `ValueError` for an empty list, an empty entry, an unknown method (naming it) or
    a method listed twice; `TypeError` for something that is not text.
    """
    if isinstance(methods, str):
        items = methods.split(",")
        if not methods.strip():
            items = []
    elif isinstance(methods, Sequence) and all(isinstance(m, str) for m in methods):
        items = list(methods)
    else:
        raise ValidationTypeError(
            f"methods must be a comma-separated string or a list of strings, got {methods!r}"
        )
    if not items:
        raise ValidationError("no methods given; name at least one, e.g. 'bptt,diagonal,immediate'")
    canonical: list[str] = []
    parsed: list = []
    for item in items:
        text = item.strip().lower()
        if not text:
            raise ValidationError(f"methods {','.join(items)!r} has an empty entry between commas")
        method = parse_method(text, 1.0 if text == REFERENCE else lam)
        # Two spellings of one method ('head-sparse:0.5', 'head-sparse:.50') are one method.
        for earlier_text, earlier in zip(canonical, parsed, strict=True):
            if text == earlier_text or _same_method(method, earlier):
                raise ValidationError(
                    f"method {item.strip()!r} is listed twice (as {earlier_text!r} already)"
                )
        canonical.append(text)
        parsed.append(method)
    return tuple(canonical)


def _same_method(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return type(a) is type(b) and bool(eqx.tree_equal(a, b))


def run_config(config: TrainConfig, method: str) -> TrainConfig:
    return dataclasses.replace(
        config, method=method, lam=1.0 if method == REFERENCE else config.lam
    )


def folder_name(method: str) -> str:
    # 'random-k:4' -> 'random-k-4': a colon is awkward in paths on some systems.
    return re.sub(r"[^a-z0-9._-]+", "-", method)
