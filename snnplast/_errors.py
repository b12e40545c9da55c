"""The project's own error type for bad input, so the command line can tell it from a bug."""

from __future__ import annotations


class ValidationError(ValueError):
    """A value outside what snnplast allows: the message names the value and what is allowed.

    A subclass of `ValueError`, so ``except ValueError`` still catches it. The command line turns
    it into one line and exit status 2; any other exception is a bug and keeps its traceback.
    """


class ValidationTypeError(ValidationError, TypeError):
    """A :class:`ValidationError` for a value of the wrong type (also a `TypeError`)."""
