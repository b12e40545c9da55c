"""The ``snnplast`` command line. Each sub-command lives in its own module with a
``register(subparsers)`` function that adds its parser and sets ``func``.

Errors: bad input (the project's :class:`~snnplast._errors.ValidationError`) ends in one line and
exit status 2; anything else is a bug and keeps its traceback (exit status 1).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import linecache
import os
import sys
import traceback
import warnings
from pathlib import Path

from .._errors import ValidationError

_PACKAGE = Path(__file__).resolve().parents[1]
# Packages whose errors are never about the user's input: an exception there is a bug.
_INTERNAL = (_PACKAGE / "engine", _PACKAGE / "online")

# Sub-command modules, in the order `snnplast --help` lists them.
_COMMANDS = ("train", "evaluate", "data", "inspect", "compare", "plot", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snnplast",
        description="Online learning for spiking and recurrent networks without BPTT.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"snnplast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"._{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}._{name}":
                continue  # sub-command not part of this build
            raise
        module.register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.command, warnings.showwarning)
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"\nsnnplast {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (`snnplast inspect | head`): nothing is wrong, stop quietly, as
        # programs ended by SIGPIPE do. Output still buffered would raise again at exit.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except Exception as e:  # noqa: BLE001 - sorted into bad input and bugs right here
        where = machine_error(e)
        if where is not None:
            # Neither bad input nor a bug: the machine refused (a folder that cannot be
            # written, a full disk). Files are written atomically, so nothing half-written stays.
            print(f"snnplast {args.command}: error: {where}", file=sys.stderr)
            return 1
        if not is_validation_error(e):
            traceback.print_exc()
            print(
                f"snnplast {args.command}: unexpected {type(e).__name__} (a bug, not bad input): "
                f"unless the traceback above ends in your own code, please report it with the "
                f"traceback, the command line and `pip show snnplast jax` to {_report_to()}",
                file=sys.stderr,
            )
            return 1
        # Bad input ends in one line naming the problem, not a traceback.
        print(f"snnplast {args.command}: error: {e}", file=sys.stderr)
        return 2


def _one_line_warning(command: str, show):
    """`warnings.showwarning` that prints snnplast's own warnings (a recording left out of a
    conversion) as one line, ``snnplast COMMAND: warning: ...``, and others as `show` does."""

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if not category.__module__.startswith(f"{__package__.split('.')[0]}."):
            return show(message, category, filename, lineno, file, line)
        print(f"snnplast {command}: warning: {message}", file=sys.stderr if file is None else file)

    return showwarning


# errno -> what to do about it, for errors of the machine rather than of the input or the code.
_MACHINE_ERRORS = {
    errno.EACCES: "choose a folder you can write to",
    errno.EPERM: "choose a folder you can write to",
    errno.EROFS: "the file system is read-only: choose another folder",
    errno.ENOSPC: "the disk is full: free space or choose another folder (a training run "
                  "continues from its last checkpoint with --resume)",
    errno.EDQUOT: "the disk quota is used up: free space or choose another folder (a training "
                  "run continues from its last checkpoint with --resume)",
}


def machine_error(e: BaseException) -> str | None:
    """One line for an `OSError` of the machine (permission denied, a read-only file system, a
    full disk), naming the file and what to do; ``None`` for any other error."""
    if not isinstance(e, OSError) or e.errno not in _MACHINE_ERRORS:
        return None
    where = f": {e.filename}" if e.filename else ""
    return f"{e.strerror or type(e).__name__}{where}; {_MACHINE_ERRORS[e.errno]}"


def is_validation_error(e: BaseException) -> bool:
    """Whether `e` reports bad input (one line for the user) rather than a bug (a traceback).

    A :class:`ValidationError` always does, and so does any `ValueError`, `TypeError` or
    `FileNotFoundError` of a class snnplast defines (the data package's ``SHDMissingError``,
    ``SHDFormatError``, ``SpeechUnavailableError``). So does one of these built-in classes
    raised by a ``raise`` statement of snnplast's own code outside the engine and the online
    learner: the data and cell modules validate their arguments with them.
    The same classes raised inside JAX, NumPy or the engine (or by a failing builtin call in
    snnplast) are bugs.
    """
    if isinstance(e, ValidationError):
        return True
    if not isinstance(e, ValueError | TypeError | FileNotFoundError) or e.__traceback__ is None:
        return False
    if type(e).__module__.startswith(f"{__package__.split('.')[0]}."):
        return True  # the project's own error types (SHDMissingError, SpeechUnavailableError, ...)
    tb = e.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = Path(tb.tb_frame.f_code.co_filename).resolve()
    if not where.is_relative_to(_PACKAGE) or any(where.is_relative_to(p) for p in _INTERNAL):
        return False
    line = linecache.getline(str(where), tb.tb_lineno).strip()
    return line.startswith("raise ")


def _report_to() -> str:
    try:
        from importlib.metadata import metadata

        urls = metadata("snnplast").get_all("Project-URL") or []
        for url in urls:
            label, _, address = url.partition(",")
            if "issue" in label.lower() or "bug" in label.lower():
                return address.strip()
    except Exception:  # noqa: BLE001, S110 - a nicety: never let it hide the real error
        pass
    return "the snnplast maintainers (the project's issue tracker)"


if __name__ == "__main__":
    sys.exit(main())
