"""Paths as the command line takes them."""

from __future__ import annotations

from pathlib import Path


def user_path(text: str) -> Path:
    """An argparse ``type`` for paths: ``~`` is the home folder, also where no shell expanded it
    (a quoted argument, a path from a script or a config file)."""
    return Path(text).expanduser()
