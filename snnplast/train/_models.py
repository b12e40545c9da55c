"""The model registry: a hidden layer by name, or a user's ``module:factory``.

A *model factory* is a function ``(n_in, hidden, *, key) -> Cell`` that builds the hidden layer
for `n_in` input channels. The built-in ones are registered here, one line each
(:func:`register_model`); ``module:factory`` names a user's own (:func:`resolve_model`). The
trainer completes the hidden layer with a readout (``_network``).

Defaults are chosen for SHD-like input: 140 pooled channels, 100 bins of 14 ms, a few to a few
tens of spikes per bin. A membrane decay of 0.9 per bin (tau ~ 130 ms) lets a neuron integrate
over several bins, where a word's formants evolve; the input gain is raised so that a fresh
spiking layer fires at a few percent per bin, enough for the surrogate gradient to reach every
neuron from the first step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .._cell import Cell
from .._errors import ValidationError, ValidationTypeError, did_you_mean
from ..cells import ALIF, GRU, LIF, LSTM, RNN, Columnar, LinearAttention
from ._user_factory import load_factory

_ALPHA = 0.9  # membrane decay per bin
_SPIKING_GAIN = 3.0  # scale of the input-weight initialisation of spiking layers
_HEADS = 4  # attention heads of the `attention` model

ModelFactory = Callable[..., Cell]


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A registered model: its factory ``(n_in, hidden, *, key) -> Cell`` and one help line."""

    name: str
    factory: ModelFactory
    help: str


MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, factory: ModelFactory, help: str) -> None:
    """Make `factory` a model of the trainer and of ``--model`` under `name`.

    **Arguments:**

    - `name`: lower-case, without ``:`` (which marks ``module:factory``); registering a name
      again replaces it.
    - `factory`: ``factory(n_in, hidden, *, key) -> Cell``, the hidden layer; the trainer puts
      the readout on it (:func:`complete_model`).
    - `help`: one line for ``--help`` and the README.
    """
    if not callable(factory):
        raise ValidationTypeError(f"factory must be callable as (n_in, hidden, *, key), got "
                                  f"{factory!r}")
    if not name or name != name.strip().lower() or ":" in name:
        raise ValidationError(f"model name must be lower-case without ':', got {name!r}")
    MODELS[name] = ModelEntry(name, factory, help)


def _lif(recurrent: bool) -> ModelFactory:
    def build(n_in, hidden, *, key):
        return LIF(n_in, hidden, key=key, alpha=_ALPHA, recurrent=recurrent, gain=_SPIKING_GAIN)

    return build


def _alif(recurrent: bool) -> ModelFactory:
    def build(n_in, hidden, *, key):
        return ALIF(n_in, hidden, key=key, alpha=_ALPHA, recurrent=recurrent, gain=_SPIKING_GAIN)

    return build


def _attention(n_in, hidden, *, key, heads=_HEADS):
    if hidden % heads:
        raise ValidationError(f"model 'attention' has {heads} heads: hidden must be a multiple "
                              f"of {heads}, got {hidden}")
    return LinearAttention(n_in, hidden, heads, key=key)


def _columnar(n_in, hidden, *, key):
    return Columnar(n_in, hidden, key=key)


register_model("lif", _lif(recurrent=False), "leaky integrate-and-fire, feed-forward")
register_model("alif", _alif(recurrent=False), "adaptive LIF, feed-forward")
register_model("rlif", _lif(recurrent=True), "LIF with recurrent weights (diagonal masked)")
register_model("ralif", _alif(recurrent=True), "adaptive LIF with recurrent weights (default)")
register_model("rnn", RNN, "Elman RNN (tanh)")
register_model("lstm", LSTM, "LSTM")
register_model("gru", GRU, "GRU")
register_model("attention", _attention,
               f"causal linear-attention block, {_HEADS} heads of hidden/{_HEADS}")
register_model("columnar", _columnar, "Javed et al.'s columnar network, no lateral connections")


def resolve_model(model: str) -> ModelFactory:
    """The model factory `model` names: a registered name or ``module:factory``.

    ``module`` is an importable module (``mypackage.cells``; the current folder is searched
    too) or a ``.py`` file; ``factory`` is an attribute of it (dots for nested ones), a callable
    ``(n_in, hidden, *, key) -> Cell``. This is what ``--model`` of every command goes through.

    **Raises:** `ValidationError` naming `model` and the registered names, or the missing
    module or attribute.
    """
    if not isinstance(model, str):
        raise ValidationTypeError(f"model must be a string, got {model!r}")
    if model in MODELS:
        return MODELS[model].factory
    factory = load_factory(model)
    if factory is None:
        raise ValidationError(
            f"unknown model {model!r}; allowed: {', '.join(MODELS)}, or module:factory"
            + did_you_mean(model, MODELS)
        )
    return factory


def check_model(model) -> str:
    """Return `model` if :func:`resolve_model` finds it, else raise its one-line error."""
    resolve_model(model)
    return model
