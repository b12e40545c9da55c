"""Paths as the command line takes them."""

from __future__ import annotations

import argparse
from pathlib import Path


def user_path(text: str) -> Path:
    """An argparse ``type`` for paths: ``~`` is the home folder, also where no shell expanded it
    (a quoted argument, a path from a script or a config file). An empty argument (an unset
    shell variable, ``--out "$DIR"``) is refused, not read as the working folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"empty path {text!r} ('.' for the working folder)")
    return Path(text).expanduser()
