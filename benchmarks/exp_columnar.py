"""Experiment 7 (Javed et al. 2023): Master-User on columnar networks against truncated BPTT.

The test-bed of the paper's section 5: 50 binary inputs (Bernoulli 0.5), targets uniform in
(-50, 50), sequences of 50 steps, a columnar network of 20 columns (5 features each) with a
linear readout, loss ``sum_t (y_t - y*_t)^2``. For each method, the fraction of the columnar
parameters' gradient entries whose sign agrees with BPTT's (entries where BPTT's is not 0),
as the lateral connections grow. The **lateral ratio** is the number of lateral (off-diagonal)
column-to-column connections over the number of non-lateral ones (each column's connection to
itself): ``sum_{i != j} M_ij / n``; ``lateral_density = ratio / (n - 1)``.

Methods: ``ColumnarPolicy()`` (Master-User: each parameter tracks only its own column's state)
and ``TruncatedBPTT(K)`` for K in {1, 5, 20, 40} (the loss of step t through its last K steps).

**Meta-gradient variant** (section 5.2): the readout ``w`` is not a parameter but learned online
by LMS (``w <- w + alpha delta h``, alpha = 1e-2) while the columnar parameters get gradients
through those updates. True gradient: BPTT through the pair ``(h, w)`` as the state of one cell
(``ColumnarLMS`` below); T-BPTT the same with a window; Master-User with and without the
meta-trace ``TW`` (``snnplast.online.master_user_lms``, ``meta=True/False``).

The cell here is ``snnplast.Columnar`` with its connection mask held as a float array under
``stop_gradient`` (the same equations; ``FloatMaskColumnar``), so that every method compiles
once for all seeds and ratios instead of once per mask.

    python benchmarks/exp_columnar.py          # 20 seeds per ratio (float64)
    python benchmarks/exp_columnar.py --full   # 100 seeds, as in the paper
"""

from __future__ import annotations

import _experiments as ex
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import snnplast as sp
from snnplast.online import master_user_lms

N_IN, N_COLS, N_FEAT, T = 50, 20, 5, 50
RATIOS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 19.0)


class FloatMaskColumnar(sp.Columnar):
    """``snnplast.Columnar`` with the mask as a float array under ``stop_gradient``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mask = self.mask.astype(self.u.dtype)

    def __call__(self, state, x):
        h = state
        inp = jnp.concatenate([jnp.broadcast_to(x, (self.n, x.shape[0])), h[:, None]], axis=1)
        f = jax.nn.relu(jnp.einsum("nki,ni->nk", self.a_w, inp) + self.a_b)
        u = self.u * jax.lax.stop_gradient(self.mask)[:, :, None]
        pre = jnp.einsum("ijk,jk->i", u, f) + self.r * h + self.b
        h = self.decay * h + jnp.tanh(pre)
        return h, h


class FeedForwardColumnar(FloatMaskColumnar):
    """The paper's equation 22: ``h_i(t) = tanh(sum_j M_ij U_ij^T f_j(t) + b_i)`` with features of
    the input alone, so ``h`` does not depend on its past (the recurrence removed, to isolate the
    meta-gradient's error). ``r`` and the state's input column of ``a_w`` are unused: their true
    gradient is 0 and they drop out of the agreement."""

    def __call__(self, state, x):
        inp = jnp.concatenate([jnp.broadcast_to(x, (self.n, x.shape[0])),
                               jnp.zeros((self.n, 1), x.dtype)], axis=1)
        f = jax.nn.relu(jnp.einsum("nki,ni->nk", self.a_w, inp) + self.a_b)
        u = self.u * jax.lax.stop_gradient(self.mask)[:, :, None]
        h = jnp.tanh(jnp.einsum("ijk,jk->i", u, f) + self.b)
        return h, h


class ColumnarLMS(sp.Cell):
    """A columnar cell and an LMS readout learned inside the step: state ``(h, w)``; the input
    is ``[x_t, y*_t]``; the output the prediction ``w_t . h_t``; then
    ``w_{t+1} = w_t + alpha (y*_t - w_t . h_t) h_t``. BPTT through it is the meta-gradient."""

    col: FloatMaskColumnar
    w0: jax.Array
    alpha: float = eqx.field(static=True)

    def initial_state(self):
        return (self.col.initial_state(), jax.lax.stop_gradient(self.w0))

    def __call__(self, state, xy):
        h, w = state
        h, _ = self.col(h, xy[:-1])
        y = jnp.dot(w, h)
        w = w + self.alpha * (xy[-1] - y) * h
        return (h, w), y[None]


def _sq(out, y):
    return jnp.sum((out - y) ** 2)


def _half_sq(out, y):
    return 0.5 * jnp.sum((out - y) ** 2)


def problem(seed: int, ratio: float, cls=FloatMaskColumnar):
    k = jax.random.split(jax.random.PRNGKey(seed), 5)
    col = cls(N_IN, N_COLS, key=k[0], n_features=N_FEAT,
                            lateral_density=min(1.0, ratio / (N_COLS - 1)))
    col = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a)
                                 else a, col)
    xs = jax.random.bernoulli(k[2], 0.5, (T, N_IN)).astype(jnp.float64)
    ys = jax.random.uniform(k[3], (T, 1), jnp.float64, -50.0, 50.0)
    w0 = jax.random.normal(k[4], (N_COLS,), jnp.float64) * 0.1
    readout = sp.LI(N_COLS, 1, key=k[1], kappa=0.0)
    readout = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a)
                                     else a, readout)
    return col, readout, xs, ys, w0


def realised_ratio(col) -> float:
    m = np.asarray(col.mask)
    return float((m.sum() - np.trace(m)) / m.shape[0])


def agreement(true, est) -> float:
    """Fraction of entries with BPTT's sign, over the columnar parameters (mask excluded)."""
    names = ("a_w", "a_b", "u", "r", "b")
    a = np.concatenate([np.ravel(getattr(true, n)) for n in names])
    b = np.concatenate([np.ravel(getattr(est, n)) for n in names])
    nz = np.abs(a) > 1e-12
    return float(np.mean(np.sign(a[nz]) == np.sign(b[nz])))


def main(argv=None):
    p = ex.parser(__doc__.splitlines()[0])
    p.add_argument("--windows", default="1,5,20,40")
    p.add_argument("--meta-windows", default="1,5,10,40")
    p.add_argument("--ratios", default=",".join(str(r) for r in RATIOS))
    p.add_argument("--alpha", type=float, default=1e-2)
    args = p.parse_args(argv)
    seeds = args.seeds or (100 if args.full else 20)
    windows = [int(w) for w in args.windows.split(",")]
    meta_windows = [int(w) for w in args.meta_windows.split(",")]
    ratios = [float(r) for r in args.ratios.split(",")]
    jax.config.update("jax_enable_x64", True)
    try:
        return _run(args, seeds, windows, meta_windows, ratios, argv)
    finally:
        jax.config.update("jax_enable_x64", False)


def _run(args, seeds, windows, meta_windows, ratios, argv):
    def grad_fn(method):
        @eqx.filter_jit
        def g(model, xs, ys):
            return sp.gradients(model, xs, ys, loss=_sq, method=method).layers[0]

        return g

    def meta_fn(method):
        @eqx.filter_jit
        def g(cell, xy, ys):
            return sp.gradients(cell, xy, ys, loss=_half_sq, method=method).col

        return g

    @eqx.filter_jit
    def mu(col, xs, ys, w0, meta):
        return master_user_lms(col, xs, ys[:, 0], alpha=args.alpha, w0=w0, meta=meta)[0]

    rec = {"Master-User (Columnar)": grad_fn(sp.ColumnarPolicy())}
    rec.update({f"T-BPTT {w}": grad_fn(sp.TruncatedBPTT(w)) for w in windows})
    meta = {f"T-BPTT {w}": meta_fn(sp.TruncatedBPTT(w)) for w in meta_windows}
    bptt, meta_bptt = grad_fn("bptt"), meta_fn("bptt")
    agree = {m: {r: [] for r in ratios} for m in rec}
    agree_meta = {m: {r: [] for r in ratios} for m in
                  ["Master-User + TW (meta)", "Master-User, TW = 0", *meta]}
    agree_ff = {m: {r: [] for r in ratios} for m in agree_meta}
    realised = {r: [] for r in ratios}

    def meta_round(col, xs, ys, w0, ratio, into):
        """Every meta-gradient method against BPTT through the LMS updates, on one problem."""
        cell = ColumnarLMS(col, w0, args.alpha)
        xy = jnp.concatenate([xs, ys], axis=1)
        true = meta_bptt(cell, xy, ys)
        for m, f in meta.items():
            into[m][ratio].append(agreement(true, f(cell, xy, ys)))
        for m, with_tw in (("Master-User + TW (meta)", True), ("Master-User, TW = 0", False)):
            into[m][ratio].append(agreement(true, mu(col, xs, ys, w0, with_tw)))
    for ratio in ex.progress(ratios, "lateral ratios"):
        for seed in range(seeds):
            col, readout, xs, ys, w0 = problem(seed, ratio)
            realised[ratio].append(realised_ratio(col))
            model = sp.Sequential([col, readout])
            true = bptt(model, xs, ys)
            for m, f in rec.items():
                agree[m][ratio].append(agreement(true, f(model, xs, ys)))
            meta_round(col, xs, ys, w0, ratio, agree_meta)
            col, _, xs, ys, w0 = problem(seed, ratio, FeedForwardColumnar)
            meta_round(col, xs, ys, w0, ratio, agree_ff)

    def table_of(d):
        header = ["method"] + [f"ratio {np.mean(realised[r]):.2g}" for r in ratios]
        rows = [[m] + [ex.fmt_mean_sd(d[m][r], 100, unit="%") for r in ratios] for m in d]
        return ex.markdown_table(header, rows)

    table = "## Recurrent gradient (paper's figure 3)\n\n" + table_of(agree)
    notes = (f"## Meta-gradient through the LMS readout, recurrence removed (equation 22, "
             f"figure 4; alpha = {args.alpha:g})\n\n" + table_of(agree_ff) + "\n\n"
             f"## Recurrent gradient through the LMS readout (figure 5; alpha = {args.alpha:g})"
             "\n\n" + table_of(agree_meta) + "\n\n"
             f"Sign agreement with BPTT in %, mean +- sd over {seeds} seeds per ratio (the ratio "
             "in the header is the realised mean). Paper (figures 3 and 4, 100 seeds): "
             "Master-User's agreement is ~100% without lateral connections and falls as they "
             "grow; T-BPTT improves with its window but even a window of 40 stays below "
             "Master-User when lateral connections are few; for the meta-gradient the advantage "
             "is smaller (Master-User above T-BPTT 10 up to a 10% ratio).")
    fig, (a1, a2, a3) = ex.figure(3)
    xr = [max(np.mean(realised[r]), 0.03) for r in ratios]
    for ax, d, title in ((a1, agree, "recurrent gradient"),
                         (a2, agree_ff, "meta-gradient, no recurrence"),
                         (a3, agree_meta, "recurrent + meta-gradient")):
        for m in d:
            ms = [ex.mean_sd(d[m][r])[:2] for r in ratios]
            ax.errorbar(xr, [100 * v[0] for v in ms],
                        [100 * v[1] / np.sqrt(seeds) for v in ms], marker="o", capsize=2,
                        label=m, lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("lateral / non-lateral connections (0 plotted at 0.03)")
        ax.set_ylabel("sign agreement with BPTT (%), +- s.e.")
        ax.set_title(title)
        ax.legend(fontsize=6)
    ex.write_results("columnar", args.out, command=ex.command_line(argv, __file__),
                     title="Javed et al.'s columnar test-bed: sign agreement with BPTT",
                     table=table, notes=notes, figure=fig,
                     data={"seeds": seeds, "ratios": ratios,
                           "realised_ratio": {str(r): v for r, v in realised.items()},
                           "recurrent": {m: {str(r): v for r, v in d.items()}
                                         for m, d in agree.items()},
                           "meta_recurrent": {m: {str(r): v for r, v in d.items()}
                                              for m, d in agree_meta.items()},
                           "meta_no_recurrence": {m: {str(r): v for r, v in d.items()}
                                                  for m, d in agree_ff.items()}})
    print(table)
    print(notes)
    return agree, agree_meta


if __name__ == "__main__":
    main()
