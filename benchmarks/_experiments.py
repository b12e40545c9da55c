"""What the paper experiments share: the tasks, the models, one online run, the metrics, and the
result files (a markdown table, a PNG plot and JSON recording the command and the commit).

Every ``exp_*.py`` script is ``main(argv)`` over these pieces, so a smoke test can call it with a
tiny configuration and an output folder of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import snnplast as sp

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------------------------
# Tasks: streams of (input, target) pairs with one change of the generating process.


def sine_shift(n_steps: int, shift_at: int, omega0: float = 2 * np.pi / 25,
               omega1: float = 2 * np.pi / 12) -> tuple[np.ndarray, np.ndarray]:
    """A sine predicted one step ahead, whose angular frequency changes at ``shift_at``.

    The phase is continuous across the shift. A single value ``x_t`` does not tell whether the
    sine rises or falls, so the prediction ``x_{t+1}`` needs memory: credit through time matters.

    **Returns:** ``(inputs [T, 1], targets [T, 1])`` with ``targets[t] = inputs[t + 1]``.
    """
    omega = np.where(np.arange(n_steps + 1) < shift_at, omega0, omega1)
    phase = np.concatenate([[0.0], np.cumsum(omega[:-1])])
    x = np.sin(phase).astype(np.float32)[:, None]
    return x[:-1], x[1:]


def lorenz_shift(n_steps: int, shift_at: int, rho0: float = 28.0, rho1: float = 35.0,
                 dt: float = 0.01, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The Lorenz system (sigma 10, beta 8/3) predicted one step ahead; ``rho`` changes at
    ``shift_at``. RK4 with step ``dt``, started from a seeded point after a 1000-step burn-in;
    the three coordinates are divided by 20 so they lie roughly in [-1, 2].

    **Returns:** ``(inputs [T, 3], targets [T, 3])`` with ``targets[t] = inputs[t + 1]``.
    """

    def f(u, rho):
        x, y, z = u
        return np.array([10.0 * (y - x), x * (rho - z) - y, x * y - 8.0 / 3.0 * z])

    def rk4(u, rho):
        a = f(u, rho)
        b = f(u + dt / 2 * a, rho)
        c = f(u + dt / 2 * b, rho)
        d = f(u + dt * c, rho)
        return u + dt / 6 * (a + 2 * b + 2 * c + d)

    u = np.random.default_rng(seed).normal(size=3) + np.array([1.0, 1.0, 20.0])
    for _ in range(1000):
        u = rk4(u, rho0)
    out = np.empty((n_steps + 1, 3))
    for t in range(n_steps + 1):
        out[t] = u
        u = rk4(u, rho0 if t < shift_at else rho1)
    out = (out / 20.0).astype(np.float32)
    return out[:-1], out[1:]


# ----------------------------------------------------------------------------------------------
# Models and one online run.


def with_readout(cell: sp.Cell, n: int, n_out: int, key) -> sp.Sequential:
    """``cell`` followed by a linear readout without memory (an ``LI`` with ``kappa = 0``)."""
    return sp.Sequential([cell, sp.LI(n, n_out, key=key, kappa=0.0)])


def elman(n: int, key, n_in: int = 1, n_out: int = 1) -> sp.Sequential:
    """Elman RNN of ``n`` tanh units with a linear readout."""
    k1, k2 = jax.random.split(key)
    return with_readout(sp.RNN(n_in, n, key=k1), n, n_out, k2)


def lstm(n: int, key, n_in: int = 1, n_out: int = 1) -> sp.Sequential:
    """LSTM of ``n`` units with a linear readout."""
    k1, k2 = jax.random.split(key)
    return with_readout(sp.LSTM(n_in, n, key=k1), n, n_out, k2)


def mse(out, y):
    return jnp.mean((out - y) ** 2)


OPTIMIZERS: dict[str, Callable[[float], optax.GradientTransformation]] = {
    "adam": optax.adam,
    "rmsprop": optax.rmsprop,
    "sgd": optax.sgd,
}


def fixed_readout(tx: optax.GradientTransformation, *,
                  only: bool = False) -> optax.GradientTransformation:
    """`tx` on every parameter but the last layer's (a ``Sequential``'s readout), which stays at
    its initial values: adaptation must then go through the recurrent layer. With `only`, the
    reverse: the readout alone learns, on a fixed random recurrent layer (a reservoir), which
    tells whether a task needs any credit through time at all."""
    learn, keep = ("fixed", "train") if only else ("train", "fixed")

    def labels(params):
        lab = jax.tree_util.tree_map(lambda _: learn, params)
        last = jax.tree_util.tree_map(lambda _: keep, lab.layers[-1])
        return eqx.tree_at(lambda m: m.layers[-1], lab, last)

    return optax.multi_transform({"train": tx, "fixed": optax.set_to_zero()}, labels)


READOUTS = ("learned", "fixed", "only")


def online_run(model, policy, inputs, targets, *, lr: float = 3e-3, optimizer: str = "adam",
               key=None, freeze_at: int | None = None, loss=mse,
               readout: str = "learned") -> np.ndarray:
    """Learn online on one stream with an :class:`snnplast.OnlineLearner`, updating every step.

    **Arguments:** `freeze_at`: stop learning from this step on (the parameters stay fixed, the
    stream goes on): the "no adaptation" baseline. `readout`: ``"learned"`` (every parameter
    learns), ``"fixed"`` (the readout keeps its initial weights) or ``"only"`` (only the readout
    learns): :func:`fixed_readout`.

    **Returns:** the per-step losses ``[T]`` (NaN from the step a run diverges).
    """
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    learner = _learner(model, policy, loss, optimizer, lr, readout)
    key = jax.random.PRNGKey(0) if key is None else key
    state = learner.init(model, inputs[0], key=key)
    if freeze_at is None:
        _, _, losses = learner.update(model, state, inputs, targets, key=key)
        return np.asarray(losses)
    model, state, first = learner.update(model, state, inputs[:freeze_at], targets[:freeze_at],
                                         key=key)
    _, outs = jax.lax.scan(lambda s, x: model(s, x), _state_of(model, state),
                           inputs[freeze_at:])
    rest = jax.vmap(loss)(outs, targets[freeze_at:])
    return np.concatenate([np.asarray(first), np.asarray(rest)])


_LEARNERS: dict = {}


def _learner(model, policy, loss, optimizer, lr, readout="learned") -> sp.OnlineLearner:
    """One learner (so one compilation) per policy, optimizer and model structure, reused across
    seeds. Reuse is sound because the trace engine derives a step's structure from the model's
    shapes and static fields only, which the jit cache keys on; a model with integer or boolean
    arrays (constant masks, whose values shape the structure) gets a fresh learner every time.
    """
    tx = OPTIMIZERS[optimizer](lr)
    tx = tx if readout == "learned" else fixed_readout(tx, only=readout == "only")
    leaves = jax.tree_util.tree_leaves(model)
    if any(eqx.is_array(a) and not eqx.is_inexact_array(a) for a in leaves):
        return sp.OnlineLearner(policy, loss, tx)
    shapes = tuple((a.shape, str(a.dtype)) for a in leaves if eqx.is_array(a))
    struct = jax.tree_util.tree_structure(eqx.partition(model, eqx.is_array)[1])
    k = (repr(policy), loss, optimizer, lr, readout, shapes, str(struct))
    if k not in _LEARNERS:
        _LEARNERS[k] = sp.OnlineLearner(policy, loss, tx)
    return _LEARNERS[k]


def _state_of(model, state):
    """The learner's cell state of its one stream, as the model's state pytree."""
    leaves = [a[0] for a in state.carry.state]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(model.initial_state()),
                                        leaves)


def post_shift_mse(losses: np.ndarray, shift_at: int) -> float:
    """Mean per-step loss from the shift to the end of the stream (NaN if the run diverged)."""
    return float(np.mean(losses[shift_at:]))


def recovery(loss: float, baseline: float, reference: float) -> float:
    """``(baseline - loss) / (baseline - reference)``: the fraction of the reference's gain over
    the baseline that a method achieves (1 = as good as the reference, 0 = no better than the
    baseline, > 1 = better than the reference)."""
    return float((baseline - loss) / (baseline - reference))


def mean_sd(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean and sample s.d. over the finite values, and how many were not finite."""
    v = np.asarray(values, dtype=float)
    ok = v[np.isfinite(v)]
    if ok.size == 0:
        return float("nan"), float("nan"), int(v.size)
    sd = float(np.std(ok, ddof=1)) if ok.size > 1 else 0.0
    return float(np.mean(ok)), sd, int(v.size - ok.size)


def fmt_mean_sd(values: Sequence[float], scale: float = 1.0, digits: int = 1,
                unit: str = "") -> str:
    m, s, bad = mean_sd(values)
    if not np.isfinite(m):
        return f"diverged ({bad}/{len(values)})"
    text = f"{m * scale:.{digits}f} +- {s * scale:.{digits}f}{unit}"
    return text + (f" ({bad}/{len(values)} diverged)" if bad else "")


def fmt_sci(values: Sequence[float]) -> str:
    m, s, bad = mean_sd(values)
    if not np.isfinite(m):
        return f"diverged ({bad}/{len(values)})"
    return f"{m:.2e} +- {s:.1e}" + (f" ({bad}/{len(values)} diverged)" if bad else "")


def progress(items, desc: str):
    """tqdm when it is installed (it is a dependency of the speech extra), the items otherwise."""
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, file=sys.stderr, leave=False)


# ----------------------------------------------------------------------------------------------
# Command line and result files.


def parser(description: str) -> argparse.ArgumentParser:
    """The options every experiment has: ``--full`` (the paper's sizes), ``--seeds``, ``--out``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--full", action="store_true", help="the paper's sizes (slow on a CPU)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: per script)")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for the result files")
    p.add_argument("--restart", action="store_true",
                   help="do not resume an interrupted run of the same command (scripts that keep "
                        "a log of finished runs)")
    return p


def add_setting(p: argparse.ArgumentParser) -> None:
    """``--lr`` and ``--readout``: the online setting the sine experiments (1-3) share."""
    p.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate (default 3e-3)")
    p.add_argument("--readout", choices=READOUTS, default="learned",
                   help="learned: every parameter learns online (default); fixed: the readout "
                        "keeps its initial weights, so adaptation goes through the recurrent "
                        "layer")


def setting_suffix(args) -> str:
    """The result files' suffix for a setting other than the default (Adam 3e-3, readout
    learned), so runs in different settings sit side by side."""
    return ("" if args.lr == 3e-3 else f"_lr{args.lr:g}") + (
        "" if args.readout == "learned" else f"_{args.readout}readout")


def setting_note(args) -> str:
    return (f"OnlineLearner, Adam lr {args.lr:g}, one update per step, readout {args.readout}"
            + {"learned": "", "fixed": " (its initial weights throughout; the recurrent layer "
               "learns)", "only": " (the only parameters that learn; the recurrent layer keeps "
               "its initial weights, so every method's gradient is the same)"}[args.readout])


def late_mse(res: dict, fraction: float = 0.25) -> dict[str, list]:
    """Per method, the per-seed mean loss over the last `fraction` of the stream: where the
    adaptation has settled (the post-shift mean weighs the transient right after the shift)."""
    out = {}
    for m, d in res.items():
        curves = np.asarray(d["curve"], dtype=float)
        out[m] = list(np.mean(curves[:, -max(1, int(fraction * curves.shape[1])):], axis=1))
    return out


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        # Result files rewritten by an earlier run are not code: they do not make a run dirty.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(exclude)benchmarks/results"], cwd=ROOT,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+uncommitted changes" if dirty else "")


# Taken when the experiment starts, so that it names the code that ran even if the tree changes
# while a long run is under way.
_COMMIT = _commit()


def _atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _compact(obj):
    """Loss curves (lists of more than 100 numbers) to 4 significant digits: the files stay small
    and every number in a table comes from summaries computed before this rounding."""
    if isinstance(obj, dict):
        return {k: _compact(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        if len(obj) > 100 and all(isinstance(v, float) for v in obj):
            return [float(f"{v:.4g}") for v in obj]
        return [_compact(v) for v in obj]
    return obj


def command_line(argv: Sequence[str] | None, script: str) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", f"benchmarks/{Path(script).name}", *args])


def write_results(name: str, out: Path, *, command: str, title: str, table: str,
                  notes: str, data: dict, figure) -> dict[str, Path]:
    """Write ``name.md`` (title, command, commit, table, notes), ``name.png`` and ``name.json``.

    **Returns:** the three paths.
    """
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": command,
        "commit": _COMMIT,
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, os.cpu_count()={os.cpu_count()}",
    }
    paths = {k: out / f"{name}.{k}" for k in ("md", "png", "json")}
    md = (f"# {title}\n\nCommand: `{meta['command']}`  \nCommit: {meta['commit']}; "
          f"{meta['date_utc']}; jax {meta['jax']}, Python {meta['python']}, {meta['machine']}\n\n"
          f"{table.strip()}\n\n{notes.strip()}\n\nPlot: `{name}.png`; raw numbers: `{name}.json`.\n")
    _atomic(paths["md"], md.encode())
    _atomic(paths["json"], json.dumps(_compact({"meta": meta, **data}), default=float).encode())
    (out / f".{name}.jobs.jsonl").unlink(missing_ok=True)  # the runs are in the results now
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=".png")
    os.close(fd)
    try:
        figure.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, paths["png"])
    except BaseException:
        os.unlink(tmp)
        raise
    import matplotlib.pyplot as plt

    plt.close(figure)
    return paths


def figure(ncols: int = 1, width: float = 5.0, height: float = 3.6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, list(axes[0])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# The recovery experiment: several methods on one shifted stream, several seeds.


def random_k_methods(ks, select: str = "random", exact: bool = True) -> dict[str, Callable]:
    """``{"k=K": RandomK(K, select=select)}`` for each K, and ``"exact": Exact`` (unscaled
    RandomK, its default: see ``exp_random_k_default.py``)."""
    out = {f"k={k}": (lambda k=k: sp.RandomK(k, select=select)) for k in ks}
    if exact:
        out["exact"] = sp.Exact
    return out


class JobLog:
    """The finished (seed, method) runs of one experiment, kept on disk while it runs.

    An experiment of several seeds and methods can take hours (exact RTRL at n=256); if it is
    stopped, the next run of the same command reads the runs already finished from here instead
    of repeating them. One JSON line per run, appended and flushed as each run ends (a line cut
    short by a crash is ignored). :func:`write_results` deletes the log once the results are
    written, so a log only ever holds an interrupted run.

    **Arguments:**

    - `path`: the log file (``.<name>.jobs.jsonl`` beside the results);
    - `restart`: ignore (and delete) what an earlier run left;
    - `context`: what every run of this experiment shares and its numbers depend on (the
      command's options): part of every run's key, so a run made with other options is never
      taken for one of these.
    """

    def __init__(self, path: Path, restart: bool = False, context: dict | None = None):
        self.path = Path(path)
        self.context = dict(context or {})
        self.done: dict[str, dict] = {}
        if restart:
            self.path.unlink(missing_ok=True)
        elif self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.done[entry["key"]] = entry["value"]
            if self.done:
                print(f"resuming: {len(self.done)} finished runs read from {self.path}",
                      file=sys.stderr)

    def key(self, **fields) -> str:
        """A run's identity: everything that decides its numbers (the context and `fields`), as
        one string."""
        return json.dumps({"context": self.context, **fields}, sort_keys=True, default=str)

    def get(self, key: str) -> dict | None:
        return self.done.get(key)

    def put(self, key: str, value: dict) -> None:
        self.done[key] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps({"key": key, "value": value}, default=float) + "\n")
            f.flush()
            os.fsync(f.fileno())


def job_log(args, name: str) -> JobLog:
    """The :class:`JobLog` of the experiment ``name`` written to ``args.out``; its context is the
    command's options except where the results go and how many seeds (seed s's run does not
    depend on how many follow it)."""
    context = {k: v for k, v in vars(args).items() if k not in ("out", "restart", "seeds")}
    return JobLog(Path(args.out) / f".{name}.jobs.jsonl", restart=args.restart, context=context)


def run_methods(make_model: Callable, methods: dict[str, Callable], stream: Callable, *,
                seeds: int, shift: int, optimizer: str = "adam", lr: float = 3e-3,
                readout: str = "learned", desc: str = "runs",
                log: JobLog | None = None) -> dict[str, dict[str, list]]:
    """Every method on every seed: the same initial model and stream per seed for all methods.

    **Arguments:**

    - `make_model(key)`: the model of a seed; `stream(seed)`: ``(inputs, targets)``;
    - `methods`: name -> a callable returning a policy, or ``None`` for "no learning after the
      shift" (the parameters are frozen at the shift);
    - `optimizer`, `lr`, `readout`: as in :func:`online_run`;
    - `log`: runs finished earlier (same `desc`, seed, method and setting) are read from it
      instead of repeated, and each new run is added to it as soon as it ends.

    **Returns:** ``{name: {"post_shift_mse": [per seed], "curve": [per seed losses]}}``.
    """
    out = {m: {"post_shift_mse": [], "curve": []} for m in methods}
    jobs = [(s, m) for s in range(seeds) for m in methods]
    for seed, name in progress(jobs, desc):
        xs, ys = stream(seed)
        job = None if log is None else log.key(desc=desc, seed=seed, method=name,
                                               optimizer=optimizer, lr=lr, readout=readout,
                                               shift=shift, steps=len(xs))
        if job is not None and (done := log.get(job)) is not None:
            out[name]["post_shift_mse"].append(done["post_shift_mse"])
            out[name]["curve"].append(done["curve"])
            continue
        key = jax.random.PRNGKey(seed)
        model = make_model(key)
        make = methods[name]
        if make is None:
            losses = online_run(model, sp.Diagonal(), xs, ys, freeze_at=shift, lr=lr,
                                optimizer=optimizer, readout=readout)
        else:
            losses = online_run(model, make(), xs, ys, key=jax.random.fold_in(key, 1), lr=lr,
                                optimizer=optimizer, readout=readout)
        out[name]["post_shift_mse"].append(post_shift_mse(losses, shift))
        out[name]["curve"].append(losses.tolist())
        if job is not None:
            log.put(job, {"post_shift_mse": out[name]["post_shift_mse"][-1],
                          "curve": out[name]["curve"][-1]})
    return out


def recoveries(res: dict, baseline: str, reference: str, log: bool = False) -> dict[str, list]:
    """Per method, the per-seed recovery against `baseline` and `reference` of the same seed
    (on ``log(MSE)`` when `log`)."""
    f = np.log if log else (lambda v: v)
    b = f(np.asarray(res[baseline]["post_shift_mse"]))
    r = f(np.asarray(res[reference]["post_shift_mse"]))
    return {m: [recovery(v, bb, rr) for v, bb, rr in
                zip(f(np.asarray(d["post_shift_mse"])), b, r)] for m, d in res.items()}


def plot_curves(ax, res: dict, shift: int, names=None, smooth: int | None = None):
    """Mean-over-seeds loss curves (running mean), log scale, with the shift marked."""
    names = list(res) if names is None else names
    for name in names:
        curve = np.asarray(res[name]["curve"], dtype=float)
        with np.errstate(all="ignore"):
            mean = np.mean(curve, axis=0)
        w = smooth or max(1, mean.size // 100)
        y = np.convolve(mean, np.ones(w) / w, mode="valid")
        ax.semilogy(np.arange(y.size) + w // 2, y, label=name)
    ax.axvline(shift, ls=":", c="k")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE (seed mean, running mean)")
    ax.legend(fontsize=7)
