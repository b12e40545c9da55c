"""Learning on an endless, changing stream with ``OnlineLearner``: parameters are updated every
K steps while the data flows, and memory stays that of one chunk however long the stream runs.

The stream is a non-stationary regression: the target is a delayed, scaled copy of the input
whose sign flips every ``--regime`` steps, so what was learnt becomes wrong at each flip and
must be unlearnt online. A recurrent network (RNN cell under a linear readout) learns it with
e-prop's ``Diagonal`` traces; no sequence is ever stored or replayed. The script prints the
running loss and the process's memory per chunk and plots the running loss.

    python examples/streaming.py --out streaming.png

About 15 seconds on 2 CPU cores with the defaults (40 chunks of 500 steps: 11 s of CPU time
measured); ``--chunks 4 --chunk 200`` runs in a few seconds.
"""

from __future__ import annotations

import argparse
import resource
import sys
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax

import snnplast

DELAY = 2


def stream(chunk: int, regime: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless chunks ``(u [chunk, 2], y [chunk, 1])``: ``y_t = s * 0.5 * u_{t-2}``, the sign
    ``s`` flipping every `regime` steps."""
    rng = np.random.default_rng(seed)
    previous = np.zeros((DELAY, 2), np.float32)
    t = 0
    while True:
        u = rng.standard_normal((chunk, 2)).astype(np.float32)
        delayed = np.concatenate([previous, u])[:chunk, :1]
        sign = np.where(((t + np.arange(chunk)) // regime) % 2 == 0, 1.0, -1.0)[:, None]
        previous = u[-DELAY:]
        t += chunk
        yield u, (0.5 * sign * delayed).astype(np.float32)


def squared_error(output, target):
    return jnp.sum((output - target) ** 2)


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chunks", type=int, default=40, help="chunks to feed (the stream is endless)")
    p.add_argument("--chunk", type=int, default=500, help="steps per chunk")
    p.add_argument("--every", type=int, default=10, help="K: update the parameters every K steps")
    p.add_argument("--regime", type=int, default=5000, help="steps between sign flips")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="streaming.png", help="running-loss plot")
    args = p.parse_args(argv)

    k_cell, k_out = jax.random.split(jax.random.PRNGKey(args.seed))
    model = snnplast.Sequential(
        [
            snnplast.RNN(2, args.hidden, key=k_cell),
            snnplast.LI(args.hidden, 1, key=k_out, kappa=0.0),
        ]
    )
    learner = snnplast.OnlineLearner(
        snnplast.Diagonal(), squared_error, optax.adam(args.lr), every=args.every
    )
    state = learner.init(model, jnp.zeros(2))

    losses, memory = [], []
    for i, (u, y) in enumerate(stream(args.chunk, args.regime, args.seed)):
        if i == args.chunks:
            break
        model, state, chunk_losses = learner.update(model, state, u, y)
        losses.append(np.asarray(chunk_losses))
        memory.append(peak_rss_mib())
        print(
            f"chunk {i + 1:>3}: steps {int(state.steps):>6}, updates {int(state.updates):>5}, "
            f"mean loss {losses[-1].mean():.4f}, peak RSS {memory[-1]:.0f} MiB"
        )
    losses = np.concatenate(losses)
    # After the first chunk (compilation), the process's memory is flat: the learner holds
    # the state, the traces and one chunk, never the stream.
    print(f"peak RSS after chunk 1: {memory[0]:.0f} MiB, after the last: {memory[-1]:.0f} MiB")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = min(200, len(losses))
    running = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(
        np.arange(window, len(losses) + 1), running, lw=1, label=f"running mean ({window} steps)"
    )
    for flip in range(args.regime, len(losses), args.regime):
        ax.axvline(flip, color="grey", ls=":", lw=1)
    ax.set(xlabel="time step of the stream", ylabel="squared error", yscale="log",
           title=f"OnlineLearner, Diagonal traces, update every {args.every} steps; "
           "dotted: the target's sign flips")  # fmt: skip
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    plt.close(fig)
    print(f"wrote {args.out}")
    return {"losses": losses, "peak_rss_mib": memory, "updates": int(state.updates)}


if __name__ == "__main__":
    main()
