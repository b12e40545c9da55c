"""The project's own error type for bad input, so the command line can tell it from a bug."""

from __future__ import annotations


class ValidationError(ValueError):
    """A value outside what snnplast allows: the message names the value and what is allowed.

    A subclass of `ValueError`, so ``except ValueError`` still catches it. The command line turns
    it into one line and exit status 2; any other exception is a bug and keeps its traceback.
    """


class ValidationTypeError(ValidationError, TypeError):
    """A :class:`ValidationError` for a value of the wrong type (also a `TypeError`)."""


def did_you_mean(word: str, choices) -> str:
    """``"; did you mean 'x'?"`` for the choice closest to a mistyped `word`, or ``""``.

    **Arguments:**

    - `word`: what the user wrote (compared without case).
    - `choices`: the names allowed.

    **Returns:** the hint, to end an error message with.
    """
    import difflib

    close = difflib.get_close_matches(str(word).strip().lower(), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
