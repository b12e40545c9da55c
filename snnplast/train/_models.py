"""The model registry: a hidden layer by name (or a user's ``module:factory``), completed with a
leaky-integrator readout.

A *model factory* is a function ``(n_in, hidden, *, key) -> Cell`` that builds the hidden layer
for `n_in` input channels. The built-in ones are registered here, one line each
(:func:`register_model`); ``module:factory`` names a user's own (:func:`resolve_model`).

Defaults are chosen for SHD-like input: 140 pooled channels, 100 bins of 14 ms, a few to a few
tens of spikes per bin. A membrane decay of 0.9 per bin (tau ~ 130 ms) lets a neuron integrate
over several bins, where a word's formants evolve; the input gain is raised so that a fresh
spiking layer fires at a few percent per bin, enough for the surrogate gradient to reach every
neuron from the first step.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp

from .._cell import Cell, Sequential
from .._errors import ValidationError, ValidationTypeError
from ..cells import ALIF, GRU, LI, LIF, LSTM, RNN, Columnar, LinearAttention

_ALPHA = 0.9  # membrane decay per bin
_SPIKING_GAIN = 3.0  # scale of the input-weight initialisation of spiking layers
_READOUT_KAPPA = 0.9  # leak of the readout: it smooths the output over ~10 bins
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


def _attention(n_in, hidden, *, key):
    if hidden % _HEADS:
        raise ValidationError(f"model 'attention' has {_HEADS} heads: hidden must be a multiple "
                              f"of {_HEADS}, got {hidden}")
    return LinearAttention(n_in, hidden, _HEADS, key=key)


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
    module, colon, attr = model.rpartition(":")
    if not colon or not module or not attr:
        raise ValidationError(
            f"unknown model {model!r}; allowed: {', '.join(MODELS)}, or module:factory"
        )
    obj = _load_module(module, model)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValidationError(f"model {model!r}: {module} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValidationTypeError(f"model {model!r}: {attr} is not callable, got {obj!r}")
    return obj


def check_model(model) -> str:
    """Return `model` if :func:`resolve_model` finds it, else raise its one-line error."""
    resolve_model(model)
    return model


def _output_shape(cell: Cell, n_in: int) -> tuple[int, ...]:
    try:
        out = jax.eval_shape(lambda c: c(c.initial_state(), jnp.zeros(n_in))[1], cell)
    except (TypeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValidationError(
            f"model {type(cell).__name__} does not take inputs of {n_in} channels: {first}"
        ) from e
    return tuple(out.shape)


def is_complete(model: Cell) -> bool:
    """Whether `model` is a whole network: a :class:`Sequential` ending in an :class:`LI`."""
    return isinstance(model, Sequential) and isinstance(model.layers[-1], LI)


def complete_model(model: Cell, n_in: int, n_classes: int, *, key) -> Sequential:
    """`model` as a whole network whose output at each step is ``[n_classes]`` logits.

    The rule: a :class:`snnplast.Sequential` whose last layer is an :class:`snnplast.LI` is
    already a whole network and is returned as it is; any other cell is a hidden layer, and
    ``Sequential([model, LI(n_out, n_classes, kappa=0.9)])`` is returned, the standard readout
    (``n_out`` is the size of the cell's output).

    **Raises:** `ValidationError` when the model does not take ``[n_in]`` inputs, its output is
    not a vector, or a whole network does not output ``[n_classes]``.
    """
    if not isinstance(model, Cell):
        raise ValidationTypeError(f"model must be a snnplast.Cell, got {type(model).__name__}")
    shape = _output_shape(model, n_in)
    if is_complete(model):
        if shape != (n_classes,):
            raise ValidationError(
                f"model ends in an LI readout of output shape {shape}, but the data has "
                f"{n_classes} classes"
            )
        return model
    if len(shape) != 1:
        raise ValidationError(
            f"model {type(model).__name__} outputs shape {shape} per step; the readout needs "
            "a vector"
        )
    readout = LI(shape[0], n_classes, key=key, kappa=_READOUT_KAPPA)
    return Sequential([model, readout])


def build_model(model: str, n_in: int, hidden: int, n_classes: int, *, key) -> Sequential:
    """Build a registered model (or ``module:factory``) and complete it with the readout.

    **Arguments:**

    - `model`: a registered name (``lif, alif, rlif, ralif, rnn, lstm, gru, attention,
      columnar``; the ``r`` variants add recurrent weights with a masked diagonal) or
      ``module:factory`` (see :func:`resolve_model`).
    - `n_in`: input channels.
    - `hidden`: neurons in the hidden layer.
    - `n_classes`: readout size, one leaky integrator per class.
    - `key`: a PRNG key for the weights.

    **Returns:** the :class:`snnplast.Sequential` of :func:`complete_model`, whose output at each
    step is the readout's potential ``[n_classes]`` (the logits of that step).
    """
    factory = resolve_model(model)
    k_hidden, k_readout = jax.random.split(key)
    layer = factory(n_in, hidden, key=k_hidden)
    if not isinstance(layer, Cell):
        raise ValidationTypeError(
            f"model {model!r} returned {type(layer).__name__}, not a snnplast.Cell"
        )
    return complete_model(layer, n_in, n_classes, key=k_readout)


def model_key(seed: int):
    """The key a run with `seed` builds its model with (the readout's is split from it)."""
    return jax.random.PRNGKey(seed)


def readout_key(seed: int):
    """The key the readout of a user's model object gets, as :func:`build_model` would give."""
    return jax.random.split(model_key(seed))[1]


def _lasting(model: str) -> str:
    """`model` as it still resolves from another folder: a ``.py`` file by its absolute path."""
    module, colon, attr = model.rpartition(":")
    if model in MODELS or not colon or not module.endswith(".py"):
        return model
    return f"{Path(module).expanduser().resolve()}:{attr}"


def describe(model: Cell) -> str:
    """``module.Class`` of a model object, as runs record it."""
    cls = type(model)
    return f"{cls.__module__}.{cls.__qualname__}"


def network(model, seed: int, hidden: int, n_in: int, n_classes: int) -> tuple[Sequential, dict]:
    """The network a run trains, and the spec that rebuilds its shape (``model.json``).

    **Arguments:**

    - `model`: a model's text (registered name or ``module:factory``), or a
      :class:`snnplast.Cell` object (completed by the rule of :func:`complete_model`; its
      weights are used as they are).
    - `seed`: the run's seed (the weights of a model built from text, the readout of a cell).
    - `hidden`, `n_in`, `n_classes`: sizes.

    **Returns:** ``(network, spec)``. `spec` has ``model`` (the text, or ``None`` for an
    object), ``n_in``, ``hidden``, ``n_classes`` and, for an object, ``class``.
    """
    if isinstance(model, str):
        net = build_model(model, n_in, hidden, n_classes, key=model_key(seed))
        spec = {"model": _lasting(model), "n_in": n_in, "hidden": hidden, "n_classes": n_classes}
        return net, spec
    net = complete_model(model, n_in, n_classes, key=readout_key(seed))
    spec = {"model": None, "class": describe(model), "n_in": n_in, "hidden": None,
            "n_classes": n_classes, "readout_added": net is not model}
    return net, spec


def skeleton(spec: dict, like: Cell | None = None) -> Sequential:
    """A network shaped as the one `spec` describes (weights to be read over it).

    `like` is the model object a run was given (any weights); it is needed when the run was
    given an object (``spec["model"] is None``), since no factory names it.
    """
    # The key only shapes the skeleton; every leaf is then read from the file.
    key = jax.random.PRNGKey(0)
    if like is not None:
        return complete_model(like, spec["n_in"], spec["n_classes"], key=key)
    if spec.get("model") is None:
        raise ValidationError(
            f"this run trained a model object ({spec.get('class', 'a Cell')}) that no factory "
            "rebuilds; pass the same kind of model: load_model(folder, like=model)"
        )
    return build_model(spec["model"], spec["n_in"], spec["hidden"], spec["n_classes"], key=key)
