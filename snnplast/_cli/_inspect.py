"""``snnplast inspect``: the Jacobian structure the engine infers for a model, and what each
policy's traces cost per sample."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _attention(n_in, hidden, *, key, heads=4):
    from ..cells import LinearAttention

    return LinearAttention(n_in, hidden, heads, key=key)


def _columnar(n_in, hidden, *, key, heads=4):
    from ..cells import Columnar

    return Columnar(n_in, hidden, key=key)


# Hidden layers that inspect builds beyond the trainer's models (same readout on top).
_EXTRA_MODELS = {"attention": _attention, "columnar": _columnar}


def register(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="show the inferred Jacobian blocks and trace memory of a model",
        description="Trace one step of a model, print the class and compressed shape of every "
        "block of H = d state_t/d state_{t-1} and F = d state_t/d theta against its dense size, "
        "the views finer than dims the engine found (a stacked 4n gate axis seen as (4, n)), "
        "and the bytes per sample of each policy's eligibility traces beside the dense RTRL "
        "influence matrix.",
    )
    p.add_argument("--model", default="rlif",
                   help="lif, alif, rlif, ralif, rnn, lstm, gru, attention or columnar: a hidden "
                   "layer under a leaky-integrator readout")
    p.add_argument("--cell", default=None, metavar="MODULE:FACTORY",
                   help="inspect your own cell instead: FACTORY(n_in, hidden, *, key) in MODULE "
                   "(importable, or a .py path) returns a snnplast.Cell, inspected as it is")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--inputs", type=int, default=140, help="input channels (default 140)")
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
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
    """Rows ``(state, parameter, class, stored shape, bytes, dense bytes)`` of one policy's
    traces, named as :class:`~snnplast.TraceStructure` names them."""
    from ..engine import derive
    from ..engine._sjac import SJac
    from ..online import GatheredHeadStep, OnlineStep

    runner = OnlineStep(model, x, policy, lambda o, y: jnp.sum(o))
    itemsize = jnp.dtype(runner.dtype).itemsize
    ts = derive(model, x)
    # HeadSparse stores the selected heads only where it can (snnplast.gradients' default).
    gathered = GatheredHeadStep.build(runner)
    gathered_shapes = gathered.stored_shapes() if gathered is not None else {}
    rows, total = [], 0
    for (a, p), (ties, keys) in sorted(runner.traces.structure.items()):
        out_shape, in_shape = runner.traces.shapes[(a, p)]
        j = SJac(out_shape, in_shape, ties, None, keys, False)
        shape = gathered_shapes.get((a, p), tuple(j.key_size(k) for k in keys))
        stored = math.prod(shape)
        dense = math.prod(out_shape) * math.prod(in_shape)
        cls = _trace_class(stored, math.prod(out_shape), math.prod(in_shape))
        rows.append((ts.state_names[a], ts.param_names[p], cls, shape, stored * itemsize,
                     dense * itemsize))
        total += stored * itemsize
    return rows, total


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _user_cell(spec: str, n_in: int, hidden: int):
    import importlib
    import importlib.util
    import os
    import sys

    from .._cell import Cell

    module_name, sep, factory_name = spec.rpartition(":")
    if not sep or not module_name or not factory_name:
        raise ValueError(f"--cell must be MODULE:FACTORY (e.g. my_cells:make), got {spec!r}")
    if module_name.endswith(".py"):
        if not os.path.isfile(module_name):
            raise FileNotFoundError(f"--cell: no file {module_name!r}")
        loader = importlib.util.spec_from_file_location("_snnplast_user_cell", module_name)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            raise ValueError(f"--cell: cannot import module {module_name!r} ({e})") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise ValueError(f"--cell: {module_name!r} has no callable {factory_name!r}")
    cell = factory(n_in, hidden, key=jax.random.PRNGKey(0))
    if not isinstance(cell, Cell):
        raise TypeError(f"--cell: {spec} returned {type(cell).__name__}, not a snnplast.Cell")
    return cell


def build(args):
    """The model ``inspect`` traces: the user's cell, or a named hidden layer under a readout."""
    from .._cell import Sequential
    from ..cells import LI
    from ..train import build_model
    from ..train._models import MODELS

    if args.cell is not None:
        return _user_cell(args.cell, args.inputs, args.hidden)
    if args.model in _EXTRA_MODELS:  # before the registry: they take --heads
        k1, k2 = jax.random.split(jax.random.PRNGKey(0))
        layer = _EXTRA_MODELS[args.model](args.inputs, args.hidden, key=k1, heads=args.heads)
        return Sequential([layer, LI(args.hidden, args.classes, key=k2)])
    if args.model not in MODELS:
        raise ValueError(f"unknown model {args.model!r}; allowed: "
                         f"{', '.join(list(MODELS) + list(_EXTRA_MODELS))}")
    return build_model(args.model, args.inputs, args.hidden, args.classes,
                       key=jax.random.PRNGKey(0))


def run(args) -> int:
    from ..engine import derive
    from ..train._method import parse_method

    for name in ("hidden", "inputs", "classes", "heads"):
        value = getattr(args, name)
        if value < 1:
            raise ValueError(f"--{name} must be a positive integer, got {value}")
    methods = [m for m in args.policies.split(",") if m.strip()]
    policies = [parse_method(m) for m in methods]
    if any(p == "bptt" for p in policies):
        raise ValueError("--policies takes online methods only (bptt keeps no trace)")
    model = build(args)
    x = jnp.zeros(args.inputs)
    ts = derive(model, x)
    print(repr(ts))
    print(f"\n  dense RTRL influence matrix d state/d theta: {ts.n_state} x {ts.n_params} = "
          f"{_bytes(ts.rtrl_bytes)} per sample")
    for method, policy in zip(methods, policies):
        rows, total = trace_table(model, x, policy)
        print(f"\n  traces under {method} ({_bytes(total)} per sample, "
              f"{ts.rtrl_bytes / max(total, 1):.0f}x less than dense RTRL):")
        ws = max([len(r[0]) for r in rows] + [5])
        wp = max([len(r[1]) for r in rows] + [9])
        for s, p, cls, shape, nbytes, dense in rows:
            print(f"    {s:>{ws}} <- {p:<{wp}} {cls:<18} stores {shape!s:<16} "
                  f"{_bytes(nbytes):>10} of {_bytes(dense)} dense: "
                  f"{dense / max(nbytes, 1):.0f}x smaller")
        from ..online import (
            GatheredHeadStep,
            OnlineStep,
            accumulation_mode,
            resolve_block,
            whole_sequence_steps,
        )

        runner = OnlineStep(model, x, policy, lambda o, y: jnp.sum(o))
        if GatheredHeadStep.why_not(runner) is None:
            print("    accumulated step by step, traces stored for the selected heads only")
            continue
        mode, why = accumulation_mode(runner)
        print(f"    accumulated {'in blocks of steps' if mode == 'blocked' else 'step by step'}"
              f": {why}")
        if mode == "blocked":
            n = resolve_block(runner, None)
            print("    by default: " + (
                "step by step (no trace is stored per synapse; --block K to block)" if n == 1
                else f"one block up to {whole_sequence_steps(runner)} steps, else blocks of {n}"))
    return 0
