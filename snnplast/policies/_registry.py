"""The method registry: a policy's name on the command line (``name[:ARG]``) and its help line.

One registration line per policy (:func:`register_method`) makes it a ``--method`` of
``snnplast train`` and ``compare``, lists it in their help texts and lets
:func:`policy_from_text` build it; nothing else needs editing.
"""

from __future__ import annotations

import dataclasses

from .._errors import ValidationError, ValidationTypeError
from ._base import Policy


@dataclasses.dataclass(frozen=True)
class MethodEntry:
    """How a method's text builds its policy.

    **Fields:**

    - `name`: the text before the colon (``random-k``).
    - `policy`: the :class:`Policy` subclass; it is called as ``policy(lam=lam)``, or
      ``policy(**{arg: value}, lam=lam)`` for a method with an argument.
    - `help`: one line: what the trace carries.
    - `arg`: the keyword of `policy` that the text after the colon sets (``k``), or ``None``.
    - `kind`: the argument's type (``int`` or ``float``).
    """

    name: str
    policy: type
    help: str
    arg: str | None = None
    kind: type = int

    @property
    def usage(self) -> str:
        """The text form with its argument's placeholder: ``random-k:K``."""
        return self.name if self.arg is None else f"{self.name}:{self.arg.upper()}"

    def build(self, arg: str | None, lam: float, text: str) -> Policy:
        if self.arg is None:
            if arg is not None:
                raise ValidationError(f"method {text!r} takes no argument; write {self.name!r}")
            return self.policy(lam=lam)
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
        return self.policy(**{self.arg: value}, lam=lam)


METHODS: dict[str, MethodEntry] = {}


def register_method(
    name: str, policy: type, help: str, *, arg: str | None = None, kind: type = int
) -> None:
    """Make `policy` a method of the trainer and the command line under `name`.

    **Arguments:**

    - `name`: lower-case, no colon (``"top-k"``); registering a name again replaces it.
    - `policy`: a :class:`Policy` subclass taking ``lam`` (and `arg`) as keywords.
    - `help`: one line for ``--help`` and the README: what the trace carries.
    - `arg`: the keyword set by the text after the colon (``"k"`` for ``top-k:3``), if any.
    - `kind`: that argument's type.
    """
    if not (isinstance(policy, type) and issubclass(policy, Policy)):
        raise ValidationTypeError(f"policy must be a Policy subclass, got {policy!r}")
    if not name or name != name.strip().lower() or ":" in name or "," in name:
        raise ValidationError(f"method name must be lower-case without ':' or ',', got {name!r}")
    METHODS[name] = MethodEntry(name, policy, help, arg, kind)


def policy_from_text(text: str, lam: float = 1.0) -> Policy:
    """Build the policy a method's text names: ``"diagonal"``, ``"random-k:4"``.

    **Raises:** `ValidationError` naming `text` and the registered methods.
    """
    name, _, arg = text.strip().lower().partition(":")
    if name not in METHODS:
        usages = ", ".join(entry.usage for entry in METHODS.values())
        raise ValidationError(f"unknown method {text!r}; allowed: {usages}")
    return METHODS[name].build(arg or None, lam, text)
