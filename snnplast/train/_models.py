"""Model factory: a hidden layer under a leaky-integrator readout, by name.

Defaults are chosen for SHD-like input: 140 pooled channels, 100 bins of 14 ms, a few to a few
tens of spikes per bin. A membrane decay of 0.9 per bin (tau ~ 130 ms) lets a neuron integrate
over several bins, where a word's formants evolve; the input gain is raised so that a fresh
spiking layer fires at a few percent per bin, enough for the surrogate gradient to reach every
neuron from the first step.
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from .._cell import Cell, Sequential
from ..cells import ALIF, GRU, LI, LIF, LSTM, RNN

_ALPHA = 0.9  # membrane decay per bin
_SPIKING_GAIN = 3.0  # scale of the input-weight initialisation of spiking layers
_READOUT_KAPPA = 0.9  # leak of the readout: it smooths the output over ~10 bins


def _lif(recurrent: bool) -> Callable[..., Cell]:
    def build(n_in, hidden, *, key):
        return LIF(n_in, hidden, key=key, alpha=_ALPHA, recurrent=recurrent, gain=_SPIKING_GAIN)

    return build


def _alif(recurrent: bool) -> Callable[..., Cell]:
    def build(n_in, hidden, *, key):
        return ALIF(n_in, hidden, key=key, alpha=_ALPHA, recurrent=recurrent, gain=_SPIKING_GAIN)

    return build


# name -> hidden_layer(n_in, hidden, *, key). Adding a model is one line here.
_HIDDEN: dict[str, Callable[..., Cell]] = {
    "lif": _lif(recurrent=False),
    "alif": _alif(recurrent=False),
    "rlif": _lif(recurrent=True),
    "ralif": _alif(recurrent=True),
    "rnn": RNN,
    "lstm": LSTM,
    "gru": GRU,
}
MODELS: tuple[str, ...] = tuple(_HIDDEN)


def check_model(name) -> str:
    """Return `name` if it names a model, else raise a one-line `ValueError` listing them."""
    if name not in _HIDDEN:
        raise ValueError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}")
    return name


def build_model(name: str, n_in: int, hidden: int, n_classes: int, *, key) -> Sequential:
    """Build ``Sequential([hidden layer, LI readout])``.

    **Arguments:**

    - `name`: one of ``lif, alif, rlif, ralif`` (spiking; the ``r`` variants add recurrent
      weights with a masked diagonal) or ``rnn, lstm, gru``.
    - `n_in`: input channels.
    - `hidden`: neurons in the hidden layer.
    - `n_classes`: readout size, one leaky integrator per class.
    - `key`: a PRNG key for the weights.

    **Returns:** a :class:`snnplast.Sequential` whose output at each step is the readout's
    potential ``[n_classes]`` (the logits of that step).
    """
    check_model(name)
    k_hidden, k_readout = jax.random.split(key)
    layer = _HIDDEN[name](n_in, hidden, key=k_hidden)
    readout = LI(hidden, n_classes, key=k_readout, kappa=_READOUT_KAPPA)
    return Sequential([layer, readout])
