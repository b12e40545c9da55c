"""What one call of ``snnplast.gradients`` costs called in a loop: seconds, XLA compiles, and
memory mappings the process keeps afterwards.

``gradients`` keeps the program it compiled for a call (snnplast/_compiled.py) and reuses it for
a call with the same model structure, method, loss and shapes. A loss made anew for every call
(a lambda written inside the loop) is another loss each time, so such calls compile every time,
as every call did before the cache (commit aa09d8d: 0.7-1.5 s for BPTT, 1.9-2.8 s for Diagonal,
two compiles and 34 / 84 memory mappings a call). JAX keeps every executable, and each holds
memory mappings of its own; a process has a limit on them (``vm.max_map_count``, 65530 by
default on Linux), and jaxlib 0.10.2 segfaults while compiling once none are left. The
gradients of the ways are checked equal before anything is counted.

    python benchmarks/eager_calls.py                 # ralif, 4 neurons, T=10, 3 calls each
    python benchmarks/eager_calls.py --hidden 64 --steps 100 --calls 5
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import snnplast as sp


def _mappings() -> int:
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def _sq(out, y):
    return jnp.sum((out - y) ** 2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=4)
    p.add_argument("--inputs", type=int, default=5)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--calls", type=int, default=3)
    args = p.parse_args(argv)

    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    cell = sp.ALIF(args.inputs, args.hidden, key=k1, gain=3.0, recurrent=True)
    xs = jax.random.normal(k2, (args.steps, args.inputs))
    ys = jax.random.normal(k3, (args.steps, args.hidden))
    compiles: list = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, _d, **_kw: compiles.append(event)
        if event == "/jax/core/compile/backend_compile_duration" else None)
    jitted = eqx.filter_jit(lambda c, x, y, m: sp.gradients(c, x, y, loss=_sq, method=m))
    ways = {"bptt": lambda: sp.gradients(cell, xs, ys, loss=_sq),
            "Diagonal": lambda: sp.gradients(cell, xs, ys, loss=_sq, method=sp.Diagonal()),
            "Diagonal, a new loss each call": lambda: sp.gradients(
                cell, xs, ys, loss=lambda o, y: _sq(o, y), method=sp.Diagonal()),
            "Diagonal, eqx.filter_jit": lambda: jitted(cell, xs, ys, sp.Diagonal())}
    # The first call of each (compiles that any way pays); the Diagonal ways must agree (jit
    # may only reorder rounding).
    grads = [jax.tree_util.tree_leaves(way()) for way in ways.values()]
    for other in grads[2:]:
        for a, b in zip(grads[1], other, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)

    print(f"$ python {' '.join(sys.argv)}")
    print(f"jax {jax.__version__}, {platform.machine()}, {platform.processor() or 'cpu'}")
    print("| way | call | seconds | compiles | mappings added |")
    print("|---|---|---|---|---|")
    for name, way in ways.items():
        for i in range(args.calls):
            n0, m0, t0 = len(compiles), _mappings(), time.perf_counter()
            jax.block_until_ready(way())
            print(f"| {name} | {i + 2} | {time.perf_counter() - t0:.2f} | "
                  f"{len(compiles) - n0} | {_mappings() - m0} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
