"""The method registry: a gradient method's name on the command line (``name[:ARG]``), what
builds it and its help line.

One registration line per policy (:func:`register_method`) makes it a ``--method`` of
``snnplast train`` and ``compare``, lists it in their help texts and lets
:func:`policy_from_text` build it; nothing else needs editing. A method that is not a trace
policy (one the trainer dispatches on itself) registers the same way, with ``takes_lam=False``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .._errors import ValidationError, ValidationTypeError
from ._base import Policy


@dataclasses.dataclass(frozen=True)
class MethodEntry:
    """How a method's text builds its policy.

    **Fields:**

    - `name`: the text before the colon (``random-k``).
    - `policy`: what builds the method, usually the :class:`Policy` subclass; it is called as
      ``policy(lam=lam)``, or ``policy(**{arg: value}, lam=lam)`` for a method with an argument
      (without ``lam`` when `takes_lam` is false).
    - `help`: one line: what the trace carries.
    - `arg`: the keyword of `policy` that the text after the colon sets (``k``), or ``None``.
    - `kind`: the argument's type (``int`` or ``float``).
    - `takes_lam`: whether the method has a trace decay ``lam``; one without accepts only the
      neutral 1.0.
    """

    name: str
    policy: Callable
    help: str
    arg: str | None = None
    kind: type = int
    takes_lam: bool = True

    @property
    def usage(self) -> str:
        """The text form with its argument's placeholder: ``random-k:K``."""
        return self.name if self.arg is None else f"{self.name}:{self.arg.upper()}"

    def build(self, arg: str | None, lam: float, text: str):
        if not self.takes_lam and lam != 1.0:
            raise ValidationError(f"lam={lam!r} has no meaning for method {text!r} (no trace); "
                                  "use 1.0")
        extra = {"lam": lam} if self.takes_lam else {}
        if self.arg is None:
            if arg is not None:
                raise ValidationError(f"method {text!r} takes no argument; write {self.name!r}")
            return self.policy(**extra)
        if arg is None:
            example = "4" if self.kind is int else "0.5"
            raise ValidationError(
                f"method {text!r} needs an argument, e.g. '{self.name}:{example}'"
            )
        try:
            value = self.kind(arg)
        except ValueError:
            raise ValidationError(
                f"method {text!r}: {arg!r} is not a valid {self.kind.__name__}"
            ) from None
        try:
            return self.policy(**{self.arg: value}, **extra)
        except ValueError as e:  # the method's own check of its argument, named by its text
            raise ValidationError(f"method {text!r}: {e}") from None


METHODS: dict[str, MethodEntry] = {}


def register_method(
    name: str,
    policy: Callable,
    help: str,
    *,
    arg: str | None = None,
    kind: type = int,
    takes_lam: bool = True,
) -> None:
    """Make `policy` a method of the trainer and the command line under `name`.

    **Arguments:**

    - `name`: lower-case, no colon (``"top-k"``); registering a name again replaces it.
    - `policy`: a :class:`Policy` subclass taking ``lam`` (and `arg`) as keywords; or, with
      ``takes_lam=False``, any callable building a method the trainer dispatches on.
    - `help`: one line for ``--help`` and the README: what the trace carries.
    - `arg`: the keyword set by the text after the colon (``"k"`` for ``top-k:3``), if any.
    - `kind`: that argument's type.
    - `takes_lam`: false for a method without a trace decay.
    """
    if not callable(policy):
        raise ValidationTypeError(f"policy must be a Policy subclass or callable, got {policy!r}")
    if not name or name != name.strip().lower() or ":" in name or "," in name:
        raise ValidationError(f"method name must be lower-case without ':' or ',', got {name!r}")
    METHODS[name] = MethodEntry(name, policy, help, arg, kind, takes_lam)


def policy_from_text(text: str, lam: float = 1.0) -> Policy:
    """Build the method a text names: ``"diagonal"``, ``"random-k:4"`` (a policy, or what a
    method registered with ``takes_lam=False`` builds).

    **Raises:** `ValidationError` naming `text` and the registered methods.
    """
    name, _, arg = text.strip().lower().partition(":")
    if name not in METHODS:
        usages = ", ".join(entry.usage for entry in METHODS.values())
        raise ValidationError(f"unknown method {text!r}; allowed: {usages}")
    return METHODS[name].build(arg or None, lam, text)
