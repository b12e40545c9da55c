"""A neuron model of your own: what the trace engine finds in it, its gradients by BPTT and by
two online policies, and a short training run on spoken digits.

The neuron is a recurrent current-based LIF (a synaptic current filters the input before the
membrane integrates it), written in plain jax.numpy as one time step of one sample. Nothing
about its Jacobians is declared: ``snnplast.derive`` finds them.

    python examples/custom_neuron.py                 # spoken digits (made on first use)
    python examples/custom_neuron.py --data synth    # a procedural stand-in, seconds to make

About 1-2 minutes on 2 CPU cores with the defaults (3 epochs of e-prop, 64 neurons; measured
on the stand-in, which has the spoken digits' size, 1800 training samples of 100 x 140: 71 s
of CPU time, 68% test accuracy), plus about 2.5 minutes the very first time while the spoken
digits are made. ``--data synth --epochs 1 --hidden 16 --limit 64`` is a quick first try.
"""

from __future__ import annotations

import argparse
import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import snnplast
from snnplast.data import load_dataset
from snnplast.train import batch_objective, cross_entropy, loss_and_grad, parse_method


class SynapticLIF(snnplast.Cell):
    """Current-based LIF with recurrent spikes.

    ``i_t = beta i_{t-1} + W_in x_t + W_rec z_{t-1}``, ``v_t = alpha v_{t-1} (1 - z_{t-1}) +
    (1 - alpha) i_t``, ``z_t = H(v_t - 1)`` with a fast-sigmoid surrogate.
    """

    w_in: jax.Array
    w_rec: jax.Array
    alpha: float = eqx.field(static=True, default=0.9)
    beta: float = eqx.field(static=True, default=0.8)

    def __init__(self, n_in: int, n: int, *, key):
        k_in, k_rec = jax.random.split(key)
        self.w_in = jax.random.normal(k_in, (n, n_in)) * (3.0 / math.sqrt(n_in))
        # No self-connections: a neuron's own spike already resets it.
        mask = 1.0 - jnp.eye(n)
        self.w_rec = mask * jax.random.normal(k_rec, (n, n)) * (0.5 / math.sqrt(n))

    def initial_state(self):
        n = self.w_in.shape[0]
        return jnp.zeros(n), jnp.zeros(n), jnp.zeros(n)

    def __call__(self, state, x):
        i, v, z = state
        i = self.beta * i + self.w_in @ x + self.w_rec @ z
        v = self.alpha * v * (1.0 - jax.lax.stop_gradient(z)) + (1.0 - self.alpha) * i
        z = snnplast.surrogates.FastSigmoid()(v - 1.0)
        return (i, v, z), z


def network(n_in: int, hidden: int, n_classes: int, key) -> snnplast.Sequential:
    k_cell, k_out = jax.random.split(key)
    return snnplast.Sequential(
        [SynapticLIF(n_in, hidden, key=k_cell), snnplast.LI(hidden, n_classes, key=k_out)]
    )


def cosine(a, b) -> float:
    a, b = np.ravel(a), np.ravel(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def compare_gradients(model, x, label) -> dict[str, dict[str, float]]:
    """One sample's gradient by BPTT, by Exact (RTRL) and by Diagonal (e-prop)."""
    targets = jnp.full(x.shape[0], label)
    grads = {
        name: snnplast.gradients(model, x, targets, loss=cross_entropy, method=method)
        for name, method in (("bptt", "bptt"), ("exact", snnplast.Exact()),
                             ("diagonal", snnplast.Diagonal()))
    }  # fmt: skip
    cell = "layers[0]"
    out = {}
    for name in ("exact", "diagonal"):
        out[name] = {
            leaf: cosine(
                getattr(grads[name].layers[0], leaf), getattr(grads["bptt"].layers[0], leaf)
            )
            for leaf in ("w_in", "w_rec")
        }
        print(
            f"  {name:>8} vs bptt: cosine of {cell}.w_in {out[name]['w_in']:.6f}, "
            f"of {cell}.w_rec {out[name]['w_rec']:.6f}"
        )
    return out


@eqx.filter_jit
def scores(model, x, y):
    return batch_objective(model, x, y)[1]


def accuracy(model, split, batch: int) -> float:
    correct = 0
    for start in range(0, len(split.y), batch):
        x = jnp.asarray(split.x[start : start + batch], jnp.float32)
        predicted = scores(model, x, jnp.asarray(split.y[start : start + batch]))
        correct += int(jnp.sum(jnp.argmax(predicted, -1) == split.y[start : start + batch]))
    return correct / len(split.y)


def train(model, data, method_text: str, epochs: int, batch: int, lr: float, limit, seed: int):
    """Adam on the per-step cross-entropy, gradients by `method_text` (``bptt``, ``diagonal``...)."""
    method = parse_method(method_text)
    optimizer = optax.adam(lr)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(model, opt_state, x, y):
        (loss, _), grads = loss_and_grad(model, x, y, method)
        with jax.numpy_dtype_promotion("standard"):  # optax's step count is an int32
            params = eqx.filter(model, eqx.is_inexact_array)
            updates, opt_state = optimizer.update(grads, opt_state, params)
        return eqx.apply_updates(model, updates), opt_state, loss

    rng = np.random.default_rng(seed)
    n = len(data.train.y) if limit is None else min(limit, len(data.train.y))
    for epoch in range(1, epochs + 1):
        start, losses = time.perf_counter(), []
        order = rng.permutation(len(data.train.y))[:n]
        for b in range(0, n - batch + 1, batch):
            idx = order[b : b + batch]
            x = jnp.asarray(data.train.x[idx], jnp.float32)
            model, opt_state, loss = step(model, opt_state, x, jnp.asarray(data.train.y[idx]))
            losses.append(float(loss))
        print(
            f"  epoch {epoch}: loss {np.mean(losses):.2f}, validation accuracy "
            f"{accuracy(model, data.val, 128):.1%} ({time.perf_counter() - start:.1f} s)"
        )
    return model


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="speech", help="speech, synth, shd or a folder of SHD files")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--method", default="diagonal", help="bptt, exact, diagonal, ... to train with")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--limit", type=int, default=None, help="training samples per epoch (all)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    data = load_dataset(args.data)
    model = network(data.n_channels, args.hidden, data.n_classes, jax.random.PRNGKey(args.seed))
    x0 = jnp.asarray(data.train.x[0], jnp.float32)

    print("What the trace engine finds in one step of SynapticLIF:")
    print(snnplast.derive(model.layers[0], x0[0]))

    print("One sample's gradient by two online policies, against BPTT:")
    cosines = compare_gradients(model, x0, int(data.train.y[0]))

    print(f"Training on {args.data} with {args.method} ({data.n_classes} classes):")
    model = train(model, data, args.method, args.epochs, args.batch, args.lr, args.limit, args.seed)
    test = accuracy(model, data.test, 128)
    print(f"test accuracy {test:.1%} (chance {1 / data.n_classes:.1%})")
    return {"cosines": cosines, "test_accuracy": test}


if __name__ == "__main__":
    main()
