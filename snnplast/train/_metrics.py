"""Resource measurements of a run: process peak memory and the compiled step's scratch memory."""

from __future__ import annotations

import resource
import sys


def peak_memory_bytes() -> int:
    """Peak resident set size of this process so far, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kibibytes, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)


def temp_bytes(compiled) -> int | None:
    """Scratch memory XLA allocates for one call of a compiled function, or None if unknown.

    `compiled` is a ``jax.stages.Compiled`` (or Equinox's wrapper of one).
    """
    compiled = getattr(compiled, "compiled", compiled)
    try:
        analysis = compiled.memory_analysis()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    size = getattr(analysis, "temp_size_in_bytes", None)
    return None if size is None else int(size)
