"""A neuron model of your own: what the trace engine finds in it, its gradients by BPTT and by
two online policies, and a short training run on spoken digits.

The neuron is a recurrent current-based LIF (a synaptic current filters the input before the
membrane integrates it), written in plain jax.numpy as one time step of one sample. Nothing
about its Jacobians is declared: ``snnplast.derive`` finds them. The network (the neuron under
a leaky-integrator readout) is trained by ``snnplast.train.fit``, like a built-in model; the
run's files (``metrics.jsonl``, ``summary.json``, ``model.eqx``) go to ``--out``.

    python examples/custom_neuron.py                 # spoken digits (made on first use)
    python examples/custom_neuron.py --data synth    # a procedural stand-in, seconds to make

About 1-2 minutes on 2 CPU cores with the defaults (3 epochs of e-prop, 64 neurons; measured
on the stand-in, which has the spoken digits' size, 1800 training samples of 100 x 140: 52 s
of CPU time, 27 s of it compiling, 63% test accuracy), plus about 2.5 minutes the very first
time while the spoken digits are made. ``--data synth --epochs 1 --hidden 16 --limit 64`` is
a quick first try.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import snnplast
from snnplast.data import Split, load_dataset
from snnplast.train import TrainConfig, cross_entropy, fit


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


def first(data, n: int | None):
    """`data` with only its first `n` training samples (all when `n` is None)."""
    if n is None:
        return data
    t = data.train
    return dataclasses.replace(data, train=Split(t.x[:n], t.y[:n], t.speakers[:n]))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="speech", help="speech, synth, shd or a folder of SHD files")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--method", default="diagonal", help="bptt, exact, diagonal, ... to train with")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--limit", type=int, default=None, help="train on the first N samples only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/custom-neuron"), help="run folder")
    args = p.parse_args(argv)

    data = load_dataset(args.data)
    model = network(data.n_channels, args.hidden, data.n_classes, jax.random.PRNGKey(args.seed))
    x0 = jnp.asarray(data.train.x[0], jnp.float32)

    print("What the trace engine finds in one step of SynapticLIF:")
    print(snnplast.derive(model.layers[0], x0[0]))

    print("One sample's gradient by two online policies, against BPTT:")
    cosines = compare_gradients(model, x0, int(data.train.y[0]))

    print(f"Training on {args.data} with {args.method} ({data.n_classes} classes):")
    config = TrainConfig(
        method=args.method, epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed,
        data=args.data, n_bins=data.n_bins,
    )  # fmt: skip
    # A Sequential ending in an LI readout is trained as it is, from these very weights.
    summary = fit(config, first(data, args.limit), args.out, model=model)
    test = summary["test_accuracy"]
    print(f"test accuracy {test:.1%} (chance {1 / data.n_classes:.1%})")
    print(f"curves: snnplast plot {args.out} --out curves.png")
    return {"cosines": cosines, "test_accuracy": test, "summary": summary}


if __name__ == "__main__":
    main()
