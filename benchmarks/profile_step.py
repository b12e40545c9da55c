"""Where the time of one training gradient goes: XLA's own per-operation profile, by kind.

For each method (as in ``online_suite.py``: ``bptt``, ``diagonal``, ``hand-factorised``, ...) on
one model, hidden size and sequence length, the compiled gradient runs ``--calls`` times under
``jax.profiler`` (a Perfetto trace; no plugin needed) and every executed HLO operation's time is
summed and put in one of these kinds, read off the compiled module:

- ``products in the step``: matrix products (``dot``, or a library-fused product such as
  ``ynn_fusion``) executed at (about) every step;
- ``batched products``: matrix products executed less often (a chunk's trace contraction, the
  weight gradient of a whole sequence);
- ``records``: writes of a step's values into a buffer (``dynamic-update-slice``): what a
  chunk's contraction or BPTT's reverse pass reads later;
- ``loop copies``: plain ``copy`` operations (XLA copies a loop's carried buffers where it cannot
  prove an in-place update safe);
- ``other``: element-wise fusions, reductions, the loss.

The table also gives each method's heaviest operations with their calls per gradient, so that a
claim like "the step does three products of ``[B, H] x [H, H]``" can be checked on the compiled
code. Profiling adds overhead to every operation: compare kinds and methods of one run, not these
times with ``online_suite.py``'s.

Usage::

    python benchmarks/profile_step.py --model rlif --hidden 256 --steps 1600 \
        --methods bptt,diagonal,hand-factorised --out benchmarks/results/profile_rlif_t1600

Results: ``<out>.md`` and ``<out>.json``, with the command and the commit.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import gzip
import json
import platform
import re
import sys
import tempfile
from pathlib import Path

import equinox as eqx
import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from online_suite import compile_method, method_fn, problem
from online_vs_bptt import git_revision

KINDS = ("products in the step", "batched products", "records", "loop copies", "other")
# An HLO instruction definition in ``compiled.as_text()``: ``%name = type opcode(...)``.
_DEF = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (\S+?)(?:\{[\d,]*\})? ([a-z][\w\-]*)\(")
# Operations that only contain others (their time is their children's).
_CONTAINERS = {"while", "call", "conditional", "tuple", "parameter", "get-tuple-element"}


def instructions(hlo_text: str) -> dict:
    """``{name: (opcode, is_product, result type)}`` of every instruction of a compiled module's text.

    A product is a ``dot`` or ``convolution``, or a fusion or custom call whose computation
    holds one (a library-fused product such as ``ynn_fusion`` is a fusion around a ``dot``)."""
    bodies, current = {}, None
    for line in hlo_text.splitlines():
        head = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
        if head:
            current = head.group(1)
            bodies[current] = []
        elif current is not None:
            bodies[current].append(line)
    has_product = {c: any(re.search(r"\s(dot|convolution)\(", ln) for ln in lines)
                   for c, lines in bodies.items()}
    out = {}
    for lines in bodies.values():
        for line in lines:
            m = _DEF.match(line)
            if not m:
                continue
            name, result, opcode = m.group(1), m.group(2), m.group(3)
            called = re.findall(r"(?:calls|to_apply)=%?([\w.\-]+)", line)
            product = opcode in ("dot", "convolution") or (
                opcode in ("fusion", "custom-call")
                and any(has_product.get(c, False) for c in called))
            out[name] = (opcode, product, result)
    return out


def kind_of(name: str, opcode: str, product: bool, calls: float, steps: int) -> str:
    """The kind (:data:`KINDS`) of one executed operation."""
    if product:
        return KINDS[0] if calls >= steps / 2 else KINDS[1]
    if "dynamic-update-slice" in name or opcode == "dynamic-update-slice":
        return KINDS[2]
    if opcode == "copy":
        return KINDS[3]
    return KINDS[4]


def profile(compiled, args_, calls: int) -> dict:
    """``{operation name: (total microseconds, executions)}`` over `calls` calls."""
    jax.block_until_ready(compiled(*args_))  # warm
    with tempfile.TemporaryDirectory() as log:
        jax.profiler.start_trace(log, create_perfetto_trace=True)
        try:
            for _ in range(calls):
                jax.block_until_ready(compiled(*args_))
        finally:
            jax.profiler.stop_trace()
        traces = sorted(Path(log).rglob("perfetto_trace.json.gz"))
        if not traces:
            raise RuntimeError("jax.profiler wrote no perfetto_trace.json.gz")
        with gzip.open(traces[-1]) as f:
            data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    total, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X":
            total[e["name"]] += e.get("dur", 0.0)
            count[e["name"]] += 1
    return {n: (total[n], count[n]) for n in total}


def breakdown(compiled, args_, calls: int, steps: int, top: int) -> dict:
    """Milliseconds per call by kind, and the heaviest operations, of one compiled gradient."""
    ops = instructions(compiled.as_text())
    timed = profile(compiled, args_, calls)
    kinds = dict.fromkeys(KINDS, 0.0)
    heavy = []
    for name, (us, n) in timed.items():
        if name not in ops or ops[name][0] in _CONTAINERS:
            continue  # the runtime's own spans, or an operation holding others
        opcode, product, result = ops[name]
        per_call = n / calls
        kind = kind_of(name, opcode, product, per_call, steps)
        kinds[kind] += us / 1e3 / calls
        heavy.append({"op": name, "opcode": opcode, "result": result, "kind": kind, "ms": us / 1e3 / calls,
                      "executions": per_call})
    heavy.sort(key=lambda r: -r["ms"])
    return {"kinds_ms": kinds, "total_ms": sum(kinds.values()), "top": heavy[:top]}


def markdown(meta: dict, results: dict) -> str:
    methods = list(results)
    lines = [f"Command: `{meta['command']}`", "",
             (f"Commit {meta['commit']}, {meta['date']}, {meta['machine']}; "
             f"{meta['model']} H={meta['hidden']}, batch {meta['batch']}, T={meta['steps']}; "
             f"ms per gradient, mean of {meta['calls']} profiled calls (profiling slows every "
             "operation: compare rows and methods here, not with un-profiled timings)."), "",
             "| kind | " + " | ".join(methods) + " |",
             "|---|" + "--:|" * len(methods)]
    for kind in KINDS + ("total",):
        cells = []
        for m in methods:
            r = results[m]
            v = r["total_ms"] if kind == "total" else r["kinds_ms"][kind]
            share = "" if kind == "total" else f" ({100 * v / r['total_ms']:.0f}%)"
            cells.append(f"{v:.0f}{share}")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    for m in methods:
        lines += ["", f"Heaviest operations of `{m}`:", "",
                  "| operation | result | kind | ms | executions per call |", "|---|---|---|--:|--:|"]
        lines += [f"| `{r['op']}` ({r['opcode']}) | {r['result']} | {r['kind']} | {r['ms']:.1f} | "
                  f"{r['executions']:.0f} |" for r in results[m]["top"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="rlif")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--steps", type=int, default=1600)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="bptt,diagonal")
    ap.add_argument("--calls", type=int, default=3, help="profiled calls per method")
    ap.add_argument("--top", type=int, default=12, help="heaviest operations listed per method")
    ap.add_argument("--out", default="benchmarks/results/profile_step")
    args = ap.parse_args(argv)
    for name in ("hidden", "steps", "batch", "calls", "top"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be a positive integer, got {getattr(args, name)}")
    net, x, y = problem(args.model, args.hidden, args.steps, args.batch, args.seed)
    params, static = eqx.partition(net, eqx.is_array)
    results = {}
    for name in args.methods.split(","):
        compiled = compile_method(method_fn(name), params, static, x, y, call=False)[0]
        results[name] = breakdown(compiled, (params, x, y), args.calls, args.steps, args.top)
        r = results[name]
        print(f"{name:>18}: {r['total_ms']:.0f} ms/call: " + ", ".join(
            f"{k} {v:.0f}" for k, v in r["kinds_ms"].items()), flush=True)
    meta = {"command": "python " + " ".join([sys.argv[0]] + (argv or sys.argv[1:])),
            "commit": git_revision(), "date": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()}, jax {jax.__version__}, {jax.devices()[0].platform}",
            **{k: getattr(args, k) for k in ("model", "hidden", "batch", "steps", "calls")}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    out.with_suffix(".md").write_text(markdown(meta, results))
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
