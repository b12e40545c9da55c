"""Trace bytes per sample of each policy, for the models the trace engine is judged on.

Run: ``python benchmarks/trace_bytes.py`` (hidden 64, 140 inputs, 20 classes; attention:
``LinearAttention(140, 64, 4)``, the registry's). Prints one markdown table; the same numbers as
``snnplast inspect --model M --hidden 64 --policies exact,diagonal,head-sparse:0.5``.
"""

import jax
import jax.numpy as jnp

from snnplast import ValidationError
from snnplast.diagnostics import trace_table
from snnplast.train import build_model, parse_method

N_IN, HIDDEN, CLASSES = 140, 64, 20


def _model(name):
    return build_model(name, N_IN, HIDDEN, CLASSES, key=jax.random.PRNGKey(0))


def main():
    methods = ("exact", "diagonal", "head-sparse:0.5")
    print("| model | " + " | ".join(methods) + " |")
    print("|---|" + "--:|" * len(methods))
    for name in ("lif", "ralif", "lstm", "gru", "attention"):
        model = _model(name)
        cells = []
        for m in methods:
            try:
                _, total = trace_table(model, jnp.zeros(N_IN), parse_method(m))
            except ValidationError:  # HeadSparse on a cell without a head axis
                cells.append("n/a")
                continue
            cells.append(f"{total / 1024:.1f} KiB")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
