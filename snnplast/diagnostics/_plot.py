"""Plots of the diagnostics (matplotlib, imported only when a plot is asked for)."""

from __future__ import annotations

import numpy as np

from ._alignment import Alignment
from ._spectrum import Spectrum


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(5, 3.5))[1]


def plot_alignment(alignment: Alignment, ax=None, label: str | None = None, smooth: int = 1):
    """Per-step cosine with the reference over time (a running mean over `smooth` steps).

    **Returns:** the matplotlib axes.
    """
    ax = _axes(ax)
    c = np.nan_to_num(np.asarray(alignment.cosine, dtype=float), nan=0.0)
    w = max(1, int(smooth))
    y = np.convolve(c, np.ones(w) / w, mode="valid")
    ax.plot(np.arange(y.size) + (w - 1) // 2, y, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("cosine with reference gradient")
    ax.set_ylim(min(-0.05, float(np.min(y, initial=0.0))), 1.05)
    return ax


def plot_spectrum(spectrum: Spectrum, ax=None, label: str | None = None):
    """Singular values in descending order (the last step's, for a per-step spectrum), log scale.

    **Returns:** the matplotlib axes.
    """
    ax = _axes(ax)
    s = np.asarray(spectrum.singular_values)
    s = s[-1] if s.ndim == 2 else s
    cond = np.asarray(spectrum.condition)
    cond = cond[-1] if cond.ndim else cond
    ax.semilogy(np.arange(1, s.size + 1), s, marker=".",
                label=f"{label + ': ' if label else ''}condition {float(cond):.3g}")
    ax.set_xlabel("index")
    ax.set_ylabel("singular value")
    ax.legend(fontsize=7)
    return ax
