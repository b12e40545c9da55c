"""Gradient agreement: the cosine of each method's first-step gradient with BPTT's."""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ValidationError
from ._batches import training_batches
from ._config import TrainConfig
from ._frozen import hold_static, rebuild
from ._method import REFERENCE, parse_method
from ._method_list import run_config
from ._network import network
from ._objective import loss_and_grad


def first_batch(config: TrainConfig, train) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first batch :func:`fit` trains on with `config` (epoch 1, step 1), as it sees it.

    ``fit`` seeds a NumPy generator with ``config.seed`` and draws its batches from it with
    ``training_batches``; this takes that generator's first batch.

    **Returns:** ``(index, x, y)``: the samples' indices in `train`, their inputs (shifted along
    the channels as ``fit`` shifts them, when ``config.channel_shift`` > 0) and their labels.
    """
    rng = np.random.default_rng(config.seed)
    batch = min(config.batch, len(train.y))
    return next(training_batches(train, batch, config.augment, rng))


@eqx.filter_jit
def _jitted_gradient(params, held, x, y, method):
    _, grads = loss_and_grad(rebuild(params, held), x.astype(jnp.float32), y, method)
    return grads


def _gradient(model, x, y, method):
    # The model split by hold_static: a mask or an index array reaches the engine with values.
    return _jitted_gradient(*hold_static(model), x, y, method)


def _leaves(grads) -> tuple[jax.tree_util.PyTreeDef, dict[str, np.ndarray]]:
    """The gradient's arrays by their path in the model (``[0].weight_in``), flattened to float64.

    float64 on the host: the cosine of a gradient with itself is then 1 to ~1e-16.
    """
    grads = eqx.filter(grads, eqx.is_inexact_array)
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(grads)
    leaves = {
        jax.tree_util.keystr(path): np.asarray(leaf, np.float64).ravel()
        for path, leaf in with_paths
    }
    return treedef, leaves


def _cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    norms = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
    return float(np.dot(a, b) / norms) if norms > 0 and math.isfinite(norms) else None


def gradient_agreement(
    config: TrainConfig, dataset, methods: Sequence[str], *, model=None
) -> dict[str, dict]:
    """Cosine similarity of each method's first-step gradient with BPTT's.

    The model is built as :func:`fit` builds it (``config.seed``; `model` as in ``fit``) and the batch is the first one
    ``fit`` trains on (:func:`first_batch`), so this is the direction of the very first update.
    All gradient leaves are flattened into one vector.

    **Returns:** ``{method: {"cosine", "grad_norm", "norm_ratio", "cosine_by_parameter"}}``
    with BPTT's entry included: the cosine (None when either gradient is zero or not finite),
    the gradient's norm, its ratio to BPTT's, and the cosine of each parameter array by its
    path in the model.
    """
    _, x, y = first_batch(config, dataset.train)
    model, _ = network(
        config.model if model is None else model,
        config.seed, config.hidden, dataset.n_channels, dataset.n_classes,
    )  # fmt: skip
    reference_def, reference_leaves = _leaves(_gradient(model, x, y, REFERENCE))
    reference = np.concatenate(list(reference_leaves.values()))
    reference_norm = float(np.linalg.norm(reference))
    result = {}
    for text in dict.fromkeys([REFERENCE, *methods]):
        run = run_config(config, text)
        if text == REFERENCE:
            treedef, leaves = reference_def, reference_leaves
        else:
            treedef, leaves = _leaves(_gradient(model, x, y, parse_method(run.method, run.lam)))
        if treedef != reference_def:
            raise ValidationError(
                f"method {text!r} returned gradients shaped {treedef}, "
                f"but BPTT's are shaped {reference_def}"
            )
        g = np.concatenate(list(leaves.values()))
        norm = float(np.linalg.norm(g))
        cosine = _cosine(g, reference)
        result[text] = {
            "cosine": cosine,
            # None, not NaN, for a non-finite gradient: compare.json stays strict JSON.
            "grad_norm": norm if math.isfinite(norm) else None,
            "norm_ratio": norm / reference_norm if cosine is not None else None,
            # Per parameter array: the readout's gradient is often exact for every method and
            # can dominate the overall cosine; these show where the methods differ.
            "cosine_by_parameter": {
                name: _cosine(leaf, reference_leaves[name]) for name, leaf in leaves.items()
            },
        }
    return result
