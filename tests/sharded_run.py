"""One-process check of the data-parallel path, run by ``test_sharding.py`` with two forced host
devices (``XLA_FLAGS=--xla_force_host_platform_device_count=2``): for each method, one batch's
loss and gradient (the methods of the first argument) and a short ``fit`` (those of the second)
on one device and on two; prints JSON."""

from __future__ import annotations

import json
import sys
import tempfile

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from snnplast.data import SpikeDataset, Split
from snnplast.train import TrainConfig, build_model, fit, load_model, loss_and_grad, parse_method
from snnplast.train._sharding import DataParallel

N_CLASSES, T, C, HIDDEN, BATCH = 3, 12, 10, 8, 6


def _split(rng, n):
    y = np.arange(n, dtype=np.int32) % N_CLASSES
    x = rng.poisson(0.4, (n, T, C)).astype(np.uint8)
    x[:, :, : C // 2] += (y[:, None, None] == 0).astype(np.uint8)
    return Split(x=x, y=y, speakers=np.zeros(n, np.int32))


def _dataset():
    rng = np.random.default_rng(0)
    return SpikeDataset(train=_split(rng, 24), val=_split(rng, 6), test=_split(rng, 9),
                        n_classes=N_CLASSES, n_channels=C, n_bins=T, class_names=("a", "b", "c"),
                        source="fake")


def _max_diff(a, b) -> float:
    pairs = zip(jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_inexact_array)),
                jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_inexact_array)), strict=True)
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in pairs)


def _scale(tree) -> float:
    return max(float(np.max(np.abs(np.asarray(x))))
               for x in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array)))


def main(grad_methods: list[str], fit_methods: list[str]) -> None:
    assert len(jax.devices()) == 2, jax.devices()
    data = _dataset()
    model = build_model("rlif", C, HIDDEN, N_CLASSES, key=jax.random.PRNGKey(0))
    x, y = data.train.x[:BATCH], data.train.y[:BATCH]
    out = {}
    for text in dict.fromkeys(grad_methods + fit_methods):
        method = parse_method(text)
        grad = eqx.filter_jit(lambda m, x, y: loss_and_grad(m, x.astype(jnp.float32), y, method))
        results, shards = [], []
        for devices in (1, 2):
            parallel = DataParallel(devices)
            xs, ys = parallel.shard(x), parallel.shard(y)
            shards.append(len({s.device for s in xs.addressable_shards}))
            (loss, _), g = grad(parallel.replicate(model), xs, ys)
            results.append((float(loss), g))
        runs = []
        for devices in (1, 2) if text in fit_methods else ():
            config = TrainConfig(model="rlif", hidden=HIDDEN, epochs=2, batch=BATCH, lr=1e-2,
                                 seed=0, eval_batch=4, method=text)
            with tempfile.TemporaryDirectory() as folder:
                summary = fit(config, data, folder, progress=False, devices=devices)
                runs.append((summary, load_model(folder)))
        out[text] = {
            "devices_holding_the_batch": shards,
            "loss": [r[0] for r in results],
            "grad_max_diff": _max_diff(results[0][1], results[1][1]),
            "grad_scale": _scale(results[0][1]),
        }
        if not runs:
            continue
        out[text] |= {
            "param_max_diff": _max_diff(runs[0][1], runs[1][1]),
            "param_scale": _scale(runs[0][1]),
            "summary_devices": [r[0]["devices"] for r in runs],
            "test_accuracy": [r[0]["test_accuracy"] for r in runs],
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1].split(","), sys.argv[2].split(","))
