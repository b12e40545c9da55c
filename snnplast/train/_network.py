"""The network a run trains: a hidden layer completed with the standard readout, the spec that
rebuilds it (``model.json``) and the skeleton its saved weights are read over."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._cell import Cell, Sequential
from .._errors import ValidationError, ValidationTypeError
from .._step_contract import check_step_result
from ..cells import LI
from ..engine import state_dtype
from ._models import MODELS, resolve_model
from ._user_factory import lasting

_READOUT_KAPPA = 0.9  # leak of the readout: it smooths the output over ~10 bins


def _output(cell: Cell, n_in: int) -> jax.ShapeDtypeStruct:
    try:
        # filter_eval_shape: a cell may hold functions (an eqx.nn.MLP's activation). Inputs
        # in the state's precision, as training reads them (snnplast._precision), whatever
        # jnp.zeros would make where x64 is on.
        state = eqx.filter_eval_shape(lambda c: c.initial_state(), cell)
        x = jnp.zeros(n_in, state_dtype(jax.tree_util.tree_leaves(state)))
        result = eqx.filter_eval_shape(lambda c: c(c.initial_state(), x), cell)
    except (TypeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValidationError(
            f"model {type(cell).__name__} does not take inputs of {n_in} channels: {first}"
        ) from e
    check_step_result(cell, state, result)
    out = result[1]
    if not isinstance(out, jax.ShapeDtypeStruct):
        # A (spikes, potential) pair is fine for `snnplast.gradients` with a loss of the
        # user's own, but the readout takes one array: which one is the user's choice.
        shapes = ", ".join(str(tuple(leaf.shape)) for leaf in jax.tree_util.tree_leaves(out))
        raise ValidationTypeError(
            f"model {type(cell).__name__} outputs a {type(out).__name__} per step ({shapes}); "
            "the readout needs one array: return the one it should read as the step's output "
            "(the rest can stay in the state)"
        )
    return out


def _on_device(model: Cell) -> Cell:
    """`model` with its NumPy arrays as JAX arrays, in the dtype JAX computes them in (a
    float64 ``np.random.randn`` weight is float32 without x64), as training keeps them; a
    saved run's weights are then read over the same dtypes."""
    if not any(isinstance(leaf, np.ndarray) for leaf in jax.tree_util.tree_leaves(model)):
        return model  # the very object, as the rule promises for a whole network
    return jax.tree_util.tree_map(
        lambda leaf: jnp.asarray(leaf) if isinstance(leaf, np.ndarray) else leaf, model
    )


def is_complete(model: Cell) -> bool:
    """Whether `model` is a whole network: a :class:`Sequential` ending in an :class:`LI`."""
    return isinstance(model, Sequential) and isinstance(model.layers[-1], LI)


def complete_model(model: Cell, n_in: int, n_classes: int, *, key) -> Sequential:
    """`model` as a whole network whose output at each step is ``[n_classes]`` logits.

    The rule: a :class:`snnplast.Sequential` whose last layer is an :class:`snnplast.LI` is
    already a whole network and is returned as it is; any other cell is a hidden layer, and
    ``Sequential([model, LI(n_out, n_classes, kappa=0.9)])`` is returned, the standard readout
    (``n_out`` is the size of the cell's output). NumPy arrays in the model become JAX arrays
    first (what training would make of them).

    **Raises:** `ValidationError` when the model does not take ``[n_in]`` inputs, its output is
    not one vector, or a whole network does not output ``[n_classes]``.
    """
    if not isinstance(model, Cell):
        raise ValidationTypeError(f"model must be a snnplast.Cell, got {type(model).__name__}")
    model = _on_device(model)
    out = _output(model, n_in)
    shape = tuple(out.shape)
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
    if jnp.issubdtype(out.dtype, jnp.floating) and out.dtype != readout.weight.dtype:
        # A float64 cell (x64 on) gets a float64 readout: a float32 one would turn its own
        # state float64 at the first step, which no scan over the steps accepts.
        readout = jax.tree_util.tree_map(
            lambda a: a.astype(out.dtype) if eqx.is_inexact_array(a) else a, readout)
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
        spec = {"model": model if model in MODELS else lasting(model), "n_in": n_in, "hidden": hidden, "n_classes": n_classes}
        return net, spec
    net = complete_model(model, n_in, n_classes, key=readout_key(seed))
    spec = {"model": None, "class": describe(model), "n_in": n_in, "hidden": None,
            "n_classes": n_classes, "readout_added": not is_complete(model)}
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
