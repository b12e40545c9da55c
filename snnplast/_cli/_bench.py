"""``snnplast bench``: time and memory of one training gradient, by any method, against BPTT."""

from __future__ import annotations

import argparse
import json
import statistics
import time

N_CLASSES = 20

# The table `snnplast bench` prints without options: (model, hidden, batch, steps, method, block).
_DEFAULT_TABLE = [
    ("rlif", 128, 32, 100, "bptt", None),
    ("rlif", 128, 32, 100, "diagonal", None),
    ("rlif", 128, 32, 100, "diagonal", 1),
    ("ralif", 128, 32, 100, "bptt", None),
    ("ralif", 128, 32, 100, "diagonal", None),
    ("ralif", 128, 32, 100, "diagonal", 1),
]


# One problem's settings when any is given: the default network at its default size.
_ONE = {
    "model": "ralif",
    "hidden": 256,
    "inputs": 140,
    "batch": 32,
    "steps": 100,
    "method": "diagonal",
    "block": None,
}


def problem(model: str, hidden: int, inputs: int, batch: int, steps: int, seed: int = 0):
    """The network of ``snnplast train`` (``build_model``) and a batch of random spikes with
    random labels: what one training step of that shape computes.

    **Returns:** ``(model, x [batch, steps, inputs] float32, y [batch] int32)``.
    """
    import jax
    import jax.numpy as jnp

    from ..train import build_model

    k_model, k_x, k_y = jax.random.split(jax.random.PRNGKey(seed), 3)
    net = build_model(model, inputs, hidden, N_CLASSES, key=k_model)
    x = jax.random.bernoulli(k_x, 0.05, (batch, steps, inputs)).astype(jnp.float32)
    y = jax.random.randint(k_y, (batch,), 0, N_CLASSES, dtype=jnp.int32)
    return net, x, y


def _gradient_fn(method, block, static):
    import equinox as eqx
    import jax

    from ..train import loss_and_grad

    def grad(params, x, y):
        _, grads = loss_and_grad(eqx.combine(params, static), x, y, method, block)
        return eqx.filter(grads, eqx.is_inexact_array)

    return jax.jit(grad)


def _cosine(a, b) -> float:
    import jax
    import numpy as np

    va = np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in jax.tree_util.tree_leaves(a)])
    vb = np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in jax.tree_util.tree_leaves(b)])
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb) + 1e-300))


def measure(model: str = "ralif", hidden: int = 256, inputs: int = 140, batch: int = 32,
            steps: int = 100, method: str = "diagonal", block: int | None = None,
            repeats: int = 5, seed: int = 0, reference=None) -> dict:
    """Time one training gradient (the batch's whole sequence) by `method`.

    Compiled ahead of time (``compile_seconds``: tracing, lowering and compiling); then one
    warm-up call and `repeats` timed calls, each waited for with ``block_until_ready``.

    **Arguments:** the shape of the problem (see :func:`problem`), `method` as ``snnplast
    train --method`` takes it, `block` as ``--block``, `reference`: BPTT's gradient for the
    same problem if already known (else it is computed, for the cosine).

    **Returns:** a dict with ``ms_per_step`` (median milliseconds per training step, i.e. per
    sequence batch), ``ms_per_step_all``, ``compile_seconds``, ``temp_bytes`` (the compiled
    gradient's scratch memory), ``peak_rss_bytes`` (this process so far), ``cosine_vs_bptt``,
    ``mode`` (``blocked``/``step``/``bptt``/``truncated``) and the settings.
    """
    import equinox as eqx
    import jax

    from ..online import OnlineStep, resolve_block
    from ..policies import Policy
    from ..train import cross_entropy, parse_method, peak_memory_bytes, temp_bytes

    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    policy = parse_method(method)
    net, x, y = problem(model, hidden, inputs, batch, steps, seed)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    mode, used = "bptt", None
    if isinstance(policy, Policy):
        if block is not None and (isinstance(block, bool) or not isinstance(block, int)
                                  or block < 1):
            raise ValueError(f"block must be a positive integer, got {block!r}")
        runner = OnlineStep(net, x[0, 0], policy, cross_entropy)
        # What online_loss_and_grad will run: the default may be the step recursion.
        used = resolve_block(runner, block, steps)
        mode = "blocked" if used > 1 else "step"
    else:
        # BPTT and truncated BPTT differentiate the unrolled scan: there is no trace to block.
        if policy != "bptt":
            mode = "truncated"
        if block is not None:
            raise ValueError(f"block has no meaning for method {method!r} (only for online "
                             f"methods: traces are accumulated in blocks), got block={block!r}")
    fn = _gradient_fn(policy, block, static)
    start = time.perf_counter()
    compiled = fn.lower(params, x, y).compile()
    compile_s = time.perf_counter() - start
    grads = jax.block_until_ready(compiled(params, x, y))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(params, x, y))
        times.append(1e3 * (time.perf_counter() - t0))
    if reference is None:
        reference = grads if policy == "bptt" else jax.block_until_ready(
            _gradient_fn("bptt", None, static)(params, x, y))
    return {
        "model": model, "hidden": hidden, "inputs": inputs, "batch": batch, "steps": steps,
        "method": method, "mode": mode,
        "block": min(used, steps) if mode == "blocked" else None,
        "ms_per_step": statistics.median(times), "ms_per_step_all": times,
        "compile_seconds": compile_s, "temp_bytes": temp_bytes(compiled),
        "peak_rss_bytes": peak_memory_bytes(), "cosine_vs_bptt": _cosine(grads, reference),
        "jax_version": jax.__version__, "backend": jax.default_backend(),
    }


def _mib(n) -> str:
    return "n/a" if n is None else f"{n / 2**20:.1f}"


def register(subparsers) -> None:
    from ..train import MODELS, method_usages

    p = subparsers.add_parser(
        "bench",
        help="time and memory of one training gradient against BPTT",
        description="Time one training gradient (a batch of random spikes through the network "
        "`snnplast train` builds; median of --repeats calls after a warm-up) and report its "
        "compile time, compiled scratch memory, peak RSS and gradient cosine with BPTT. With "
        "no options: a small table (rlif and ralif, 128 neurons, 100 steps, batch 32; BPTT, "
        "Diagonal in blocks and step by step), about 2 minutes on 2 CPU cores.",
    )
    # Defaults stay None here, so that any option given means one problem, never the table.
    p.add_argument("--model",
                   help=f"one of {', '.join(MODELS)}, or module:factory (default {_ONE['model']})")
    p.add_argument("--hidden", type=int, help=f"hidden neurons (default {_ONE['hidden']})")
    p.add_argument("--inputs", type=int, help=f"input channels (default {_ONE['inputs']})")
    p.add_argument("--batch", type=int, help=f"sequences per step (default {_ONE['batch']})")
    p.add_argument("--steps", type=int, help=f"time steps (default {_ONE['steps']})")
    p.add_argument("--method",
                   help=f"{', '.join(method_usages())} (default {_ONE['method']})")
    p.add_argument("--block", type=int, default=None, metavar="K",
                   help="steps per block of trace accumulation, 1 for step by step "
                   "(default: as train chooses it; the mode column says which)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="(default %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train import check_model, parse_method

    given = {name: getattr(args, name) for name in _ONE if getattr(args, name) is not None}
    if not given:
        rows = [measure(m, h, 140, b, t, meth, blk, repeats=args.repeats, seed=args.seed)
                for m, h, b, t, meth, blk in _DEFAULT_TABLE]
        if args.json:
            print(json.dumps(rows))
            return 0
        _print_table(rows)
        return 0
    one = {**_ONE, **given}
    check_model(one["model"])
    parse_method(one["method"])  # before the minutes of compiling and timing
    for name in ("hidden", "inputs", "batch", "steps"):
        if one[name] < 1:
            raise ValueError(f"--{name} must be an integer >= 1, got {one[name]}")
    row = measure(**one, repeats=args.repeats, seed=args.seed)
    if args.json:
        print(json.dumps(row))
    else:
        _print_table([row])
    return 0


def _print_table(rows) -> None:
    bptt = {(r["model"], r["hidden"], r["batch"], r["steps"]): r["ms_per_step"]
            for r in rows if r["method"] == "bptt"}
    head = ("model", "H", "B", "T", "method", "mode", "ms/step", "x BPTT", "compile s",
            "temp MiB", "cos BPTT")
    lines = [head]
    for r in rows:
        ref = bptt.get((r["model"], r["hidden"], r["batch"], r["steps"]))
        mode = r["mode"] + (f" {r['block']}" if r["block"] else "")
        lines.append((r["model"], str(r["hidden"]), str(r["batch"]), str(r["steps"]),
                      r["method"], mode, f"{r['ms_per_step']:.1f}",
                      "-" if ref is None else f"{r['ms_per_step'] / ref:.2f}",
                      f"{r['compile_seconds']:.1f}", _mib(r["temp_bytes"]),
                      f"{r['cosine_vs_bptt']:.4f}"))
    widths = [max(len(line[k]) for line in lines) for k in range(len(head))]
    for line in lines:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths)))
