"""Whether an online gradient's scratch grows with T through the trainer: its labels, or the
engine.

The trainer's dispatch (``snnplast.train.loss_and_grad``) once turned a batch's labels ``[B]``
into per-step targets ``[B, T]`` with ``jnp.broadcast_to`` inside the compiled function, and XLA
materialised them (4 bytes per sample and step for int32 labels); it now passes ``[B, 1]``, one
target per sequence, which the engine reads in place. This script compiles the same online
gradient (``build_model(model, 140, H, 20)``, Diagonal, the default accumulation) twice per
sequence length: through the trainer's dispatch, and through
``snnplast.online.online_loss_and_grad`` with per-step targets ``[B, T]`` passed as an argument
(the engine alone), and prints both compiled temporary sizes (nothing is run).

Usage::

    python benchmarks/targets_memory.py --model rlif --hidden 64 --steps 96,1600,6400
"""

from __future__ import annotations

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp

import snnplast
from snnplast.train import build_model, cross_entropy, loss_and_grad


def temp_mib(fn, *args) -> float:
    return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="rlif")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", default="96,1600,6400")
    args = parser.parse_args(argv)
    net = build_model(args.model, 140, args.hidden, 20, key=jax.random.PRNGKey(0))
    params, static = eqx.partition(net, eqx.is_inexact_array)
    policy = snnplast.Diagonal()
    print("| T | through loss_and_grad (labels [B]) MiB | targets [B, T] as an argument MiB |")
    print("|--:|--:|--:|")
    for t in (int(s) for s in args.steps.split(",")):
        x = jnp.zeros((args.batch, t, 140), jnp.float32)
        y = jnp.zeros((args.batch,), jnp.int32)
        targets = jnp.zeros((args.batch, t), jnp.int32)
        trainer = temp_mib(lambda p, x, y: loss_and_grad(eqx.combine(p, static), x, y, policy),
                           params, x, y)
        engine = temp_mib(lambda p, x, yt: snnplast.online.online_loss_and_grad(
            eqx.combine(p, static), x, yt, policy, cross_entropy, with_scores=True),
            params, x, targets)
        print(f"| {t} | {trainer:.2f} | {engine:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
