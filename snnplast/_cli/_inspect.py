"""``snnplast inspect``: the Jacobian structure the engine infers for a model, and what each
policy's traces cost per sample."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp

from .._errors import ValidationError

# The model shown without --model or --cell: the recurrent LIF network, quick to trace.
_MODEL = "rlif"


def register(sub) -> None:
    from ..train import MODELS

    p = sub.add_parser(
        "inspect",
        help="show the inferred Jacobian blocks and trace memory of a model",
        description="Trace one step of a model, print the class and compressed shape of every "
        "block of H = d state_t/d state_{t-1} and F = d state_t/d theta against its dense size, "
        "the views finer than dims the engine found (a stacked 4n gate axis seen as (4, n)), "
        "and the bytes per sample of each policy's eligibility traces beside the dense RTRL "
        "influence matrix.",
    )
    p.add_argument("--model", default=None,
                   help="a registered model (as in train: " + ", ".join(MODELS) + ") or "
                   "module:factory: a hidden layer under the trainer's leaky-integrator readout "
                   f"(default {_MODEL})")
    p.add_argument("--cell", default=None, metavar="MODULE:FACTORY",
                   help="inspect your own cell as it is, without the readout: "
                   "FACTORY(n_in, hidden, *, key) in MODULE (importable, or a .py path) returns "
                   "a snnplast.Cell")
    p.add_argument("--hidden", type=int, default=128, help="hidden neurons (default 128)")
    p.add_argument("--inputs", type=int, default=140, help="input channels (default 140)")
    p.add_argument("--classes", type=int, default=20, help="readout classes (default 20)")
    p.add_argument("--heads", type=int, default=None,
                   help="heads of a model whose factory takes `heads` (attention; default: the "
                   "model's own, 4)")
    p.add_argument("--policies", default="diagonal,exact",
                   help="comma-separated online methods whose trace memory to show, as train "
                   "names them (bptt and tbptt:WINDOW keep no trace; default %(default)s)")
    p.set_defaults(func=run)


def _takes_heads(factory) -> bool:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: no signature to read
        return False
    return any(p.name == "heads" or p.kind is p.VAR_KEYWORD for p in params)


def build(args):
    """The model ``inspect`` traces: the ``--cell`` as it is, or ``--model`` (a registered name
    or ``module:factory``) completed with the trainer's readout, as ``train`` builds it."""
    from .._cell import Cell
    from .._errors import ValidationTypeError
    from ..train import complete_model, resolve_model

    if args.cell is not None and args.model is not None:
        raise ValidationError(
            f"give --model {args.model} (a hidden layer under the readout) or --cell {args.cell} "
            "(a cell as it is), not both"
        )
    text = args.cell if args.cell is not None else (args.model or _MODEL)
    factory = resolve_model(text)
    kwargs = {}
    if args.heads is not None:
        if not _takes_heads(factory):
            raise ValidationError(f"--heads: model {text!r} takes no heads")
        kwargs["heads"] = args.heads
    # The keys build_model uses, so that inspect shows the network train would build.
    k_hidden, k_readout = jax.random.split(jax.random.PRNGKey(0))
    cell = factory(args.inputs, args.hidden, key=k_hidden, **kwargs)
    if not isinstance(cell, Cell):
        raise ValidationTypeError(f"model {text!r} returned {type(cell).__name__}, not a "
                                  "snnplast.Cell")
    if args.cell is not None:
        return cell
    return complete_model(cell, args.inputs, args.classes, key=k_readout)


def run(args) -> int:
    from ..diagnostics import trace_table
    from ..engine import derive
    from ..policies import Policy
    from ..train import format_bytes, parse_method

    for name in ("hidden", "inputs", "classes", "heads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be a positive integer, got {value}")
    methods = [m for m in args.policies.split(",") if m.strip()]
    policies = [parse_method(m) for m in methods]
    for method, policy in zip(methods, policies):
        if not isinstance(policy, Policy):
            raise ValidationError(
                f"--policies {method}: takes online methods only (bptt and tbptt:WINDOW "
                "differentiate the unrolled steps and keep no trace)"
            )
    model = build(args)
    x = jnp.zeros(args.inputs)
    ts = derive(model, x)
    print(repr(ts))
    print(f"\n  dense RTRL influence matrix d state/d theta: {ts.n_state} x {ts.n_params} = "
          f"{format_bytes(ts.rtrl_bytes)} per sample")
    for method, policy in zip(methods, policies):
        rows, total = trace_table(model, x, policy)
        print(f"\n  traces under {method} ({format_bytes(total)} per sample, "
              f"{ts.rtrl_bytes / max(total, 1):.0f}x less than dense RTRL):")
        ws = max([len(r[0]) for r in rows] + [5])
        wp = max([len(r[1]) for r in rows] + [9])
        for s, p, cls, shape, nbytes, dense in rows:
            print(f"    {s:>{ws}} <- {p:<{wp}} {cls:<18} stores {shape!s:<16} "
                  f"{format_bytes(nbytes):>10} of {format_bytes(dense)} dense: "
                  f"{dense / max(nbytes, 1):.0f}x smaller")
        from ..online import (
            CONTRACT_EVERY,
            GatheredHeadStep,
            OnlineStep,
            accumulation_mode,
            deferred_pairs,
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
        n = resolve_block(runner, None)
        if mode == "blocked":
            print("    by default: " + (
                "step by step (no trace is stored per synapse; --block K to block)" if n == 1
                else f"one block up to {whole_sequence_steps(runner)} steps, else blocks of {n}"))
        if n == 1:
            deferred = len(deferred_pairs(runner))
            print(f"    trace contractions: {deferred} of {len(runner.traces.structure)} traces "
                  f"(those smaller than their parameter or state) every {CONTRACT_EVERY} "
                  f"steps in one product, the rest at every step")
    return 0
