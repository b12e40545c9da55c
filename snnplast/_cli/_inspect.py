"""``snnplast inspect``: the Jacobian structure the engine infers for a model, and what each
policy's traces cost per sample."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_POLICIES = ("exact", "diagonal", "immediate")


def register(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="show the inferred Jacobian blocks and trace memory of a model",
        description="Trace one step of a model, print the class and compressed shape of every "
        "block of H = d state_t/d state_{t-1} and F = d state_t/d theta, and the bytes per "
        "sample of each policy's eligibility traces beside the dense RTRL influence matrix.",
    )
    p.add_argument("--model", default="rlif", help="lif, alif, rlif, ralif, rnn, lstm, gru")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--inputs", type=int, default=140, help="input channels (default 140)")
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--policies", default="diagonal,exact",
                   help="comma-separated methods whose trace memory to show (as in train)")
    p.set_defaults(func=run)


def _trace_class(stored: int, out_size: int, param_size: int) -> str:
    if stored < param_size:
        return "factored"
    if stored == param_size:
        return "one per parameter"
    if stored >= out_size * param_size:
        return "dense"
    return "block"


def trace_table(model, x, policy) -> tuple[list, int]:
    """Rows ``(state, parameter, class, stored shape, bytes)`` of one policy's traces."""
    from ..online import OnlineStep

    runner = OnlineStep(model, x, policy, lambda o, y: jnp.sum(o))
    itemsize = jnp.dtype(runner.dtype).itemsize
    names = _names(model, runner)
    rows, total = [], 0
    for (a, p), (ties, keys) in sorted(runner.traces.structure.items()):
        out_shape, in_shape = runner.traces.shapes[(a, p)]
        from ..engine._sjac import SJac

        j = SJac(out_shape, in_shape, ties, None, keys, False)
        shape = tuple(j.key_size(k) for k in keys)
        stored = math.prod(shape)
        cls = _trace_class(stored, math.prod(out_shape), math.prod(in_shape))
        rows.append((names[0][a], names[1][p], cls, shape, stored * itemsize))
        total += stored * itemsize
    return rows, total


def _names(model, runner):
    import equinox as eqx

    s = [jax.tree_util.keystr(p) or "state" for p, _ in
         jax.tree_util.tree_flatten_with_path(model.initial_state())[0]]
    params, _ = eqx.partition(model, eqx.is_inexact_array)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    g = runner.graph
    by_id = {n.id: k for k, n in enumerate(g.p_nodes)}
    phi = [paths[by_id[n.id]] if n.id in by_id else
           "f(" + ", ".join(paths[k] for k in g.phi_sources[q]) + ")"
           for q, n in enumerate(g.phi_nodes)]
    return s, phi


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def run(args) -> int:
    from ..engine import derive
    from ..train import build_model
    from ..train._method import parse_method

    for name in ("hidden", "inputs", "classes"):
        value = getattr(args, name)
        if value < 1:
            raise ValueError(f"--{name} must be a positive integer, got {value}")
    methods = [m for m in args.policies.split(",") if m.strip()]
    policies = [parse_method(m) for m in methods]
    if any(p == "bptt" for p in policies):
        raise ValueError("--policies takes online methods only (bptt keeps no trace)")
    model = build_model(args.model, args.inputs, args.hidden, args.classes,
                        key=jax.random.PRNGKey(0))
    x = jnp.zeros(args.inputs)
    ts = derive(model, x)
    print(repr(ts))
    print(f"\n  dense RTRL influence matrix d state/d theta: {ts.n_state} x {ts.n_params} = "
          f"{_bytes(ts.rtrl_bytes)} per sample")
    for method, policy in zip(methods, policies):
        rows, total = trace_table(model, x, policy)
        print(f"\n  traces under {method} ({_bytes(total)} per sample, "
              f"{ts.rtrl_bytes / max(total, 1):.0f}x less than dense RTRL):")
        for s, p, cls, shape, nbytes in rows:
            print(f"    {s:>12} <- {p:<24} {cls:<18} stores {shape!s:<16} {_bytes(nbytes)}")
        from ..online import OnlineStep, accumulation_mode

        mode, why = accumulation_mode(OnlineStep(model, x, policy, lambda o, y: jnp.sum(o)))
        print(f"    accumulated {'in blocks of steps' if mode == 'blocked' else 'step by step'}"
              f": {why}")
    return 0
