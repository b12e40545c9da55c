"""A user's model factory named ``module:factory``: an importable module or a ``.py`` file."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path

from .._errors import ValidationError, ValidationTypeError


def _load_module(module: str, text: str):
    if module.endswith(".py"):
        path = Path(module).expanduser().resolve()
        if not path.is_file():
            raise ValidationError(f"model {text!r}: no file {path}")
        name = f"_snnplast_user_{path.stem}"
        if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        spec.loader.exec_module(loaded)
        return loaded
    # As `python -m` does, a module in the current folder is importable (while importing it).
    added = os.getcwd() not in sys.path and "" not in sys.path
    if added:
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise ValidationError(f"model {text!r}: no module named {e.name!r}") from None
        raise
    finally:
        if added:
            sys.path.remove(os.getcwd())


def load_factory(model: str):
    """The callable ``module:factory`` names (dots in ``factory`` for nested attributes), or
    ``None`` for a text that is not of that form.

    **Raises:** `ValidationError` naming a missing module, file or attribute, or something that
    is not callable.
    """
    module, colon, attr = model.rpartition(":")
    if not colon or not module or not attr:
        return None
    obj = _load_module(module, model)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValidationError(f"model {model!r}: {module} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValidationTypeError(f"model {model!r}: {attr} is not callable, got {obj!r}")
    _check_signature(model, obj)
    return obj


def _check_signature(model: str, factory) -> None:
    """A factory that cannot be called as ``factory(n_in, hidden, key=key)`` is bad input, told
    before the call (a TypeError from inside the factory stays the user's own)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check
        return
    try:
        signature.bind(1, 1, key=None)
    except TypeError as e:
        raise ValidationTypeError(
            f"model {model!r}: a model factory is called as factory(n_in, hidden, *, key), but "
            f"its signature is {signature} ({e})"
        ) from None


def lasting(model: str) -> str:
    """`model` as it still resolves from another folder: a ``.py`` file by its absolute path."""
    module, colon, attr = model.rpartition(":")
    if not colon or not module.endswith(".py"):
        return model
    return f"{Path(module).expanduser().resolve()}:{attr}"
