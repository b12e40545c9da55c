"""Experiment 5 of the sparse-RTRL paper: beyond the Elman RNN. (a) An LSTM with RandomK(4) vs
exact RTRL; (b) a linear-attention transformer block with sparse transport across heads.

Both on the frequency-shift stream of ``exp_frequency_shift.py`` (sine one step ahead, the
frequency changes halfway; OnlineLearner, Adam 3e-3, an update every step; post-shift MSE).

**(a) LSTM** (n units, state ``(h, c)``, linear readout): ``RandomK(k)`` selects the same k units
of ``h`` and ``c``. Recovery ``(L_{k=0} - L_{k=4}) / (L_{k=0} - L_exact)``, per seed.

**(b) Heads.** In ``snnplast.LinearAttention`` each head's state depends on its own past only
through a constant decay, so there is nothing to transport *across* heads. The block here feeds
its own previous output back into its input: ``input_t = [x_t, y_{t-1}]`` with ``y`` the block's
output (``d_model``), kept in the state as ``[heads, d_head]`` (``FeedbackAttention``). Then every
head's keys and values at step t depend on every head's fast weights at t-1 (through ``W_o`` and
the MLP into ``y``), and exact RTRL transports credit across heads. ``HeadSparse(f)`` carries,
for ``round(f * heads)`` heads drawn afresh each step, the Jacobian columns of those heads'
state: their fast-weight matrix ``S^h``, normaliser ``s^h`` and their ``d_head`` slice of the
fed-back output ``y``; the other heads' columns are dropped (their parameters' influence through
those heads' past states is forgotten). ``f = 0`` is ``Immediate``; ``f = 1`` is exact.
Recovery ``(L_{f=0} - L_f) / (L_{f=0} - L_exact)``.

    python benchmarks/exp_lstm_heads.py          # LSTM n=32; 6 heads, d_model 12; T=2000; 3 seeds
    python benchmarks/exp_lstm_heads.py --full   # LSTM n=64; T=4000; 5 seeds
"""

from __future__ import annotations

import _experiments as ex
import jax
import jax.numpy as jnp

import snnplast as sp


class FeedbackAttention(sp.Cell):
    """A ``LinearAttention`` block whose input is ``[x_t, y_{t-1}]``, ``y`` its own output."""

    block: sp.LinearAttention

    def __init__(self, n_in: int, d_model: int, n_heads: int, *, key, decay: float = 0.9):
        self.block = sp.LinearAttention(n_in + d_model, d_model, n_heads, key=key, decay=decay)

    def initial_state(self):
        big_s, small_s = self.block.initial_state()
        return big_s, small_s, jnp.zeros(small_s.shape, small_s.dtype)

    def __call__(self, state, x):
        big_s, small_s, y = state
        (big_s, small_s), out = self.block((big_s, small_s), jnp.concatenate([x, y.reshape(-1)]))
        return (big_s, small_s, out.reshape(y.shape)), out


def attention_model(key, d_model: int, heads: int):
    k1, k2 = jax.random.split(key)
    return ex.with_readout(FeedbackAttention(1, d_model, heads, key=k1), d_model, 1, k2)


def main(argv=None):
    p = ex.parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=None, help="LSTM units")
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--d-model", type=int, default=12)
    p.add_argument("--fractions", default="0.3333,0.5,1")
    p.add_argument("--steps", type=int, default=None)
    args = p.parse_args(argv)
    n = args.n or (64 if args.full else 32)
    steps = args.steps or (4000 if args.full else 2000)
    seeds = args.seeds or (5 if args.full else 3)
    shift = steps // 2
    stream = lambda seed: ex.sine_shift(steps, shift)
    log = ex.job_log(args, "lstm_heads")
    lstm = ex.run_methods(lambda key: ex.lstm(n, key), ex.random_k_methods([0, 4]), stream,
                          seeds=seeds, shift=shift, desc="lstm", log=log)
    rec_l = ex.recoveries(lstm, "k=0", "exact")
    fracs = [float(f) for f in args.fractions.split(",")]
    methods = {"f=0 (Immediate)": sp.Immediate}
    methods.update({f"f={f:.2g} ({max(1, round(f * args.heads))}/{args.heads} heads)":
                    (lambda f=f: sp.HeadSparse(f)) for f in fracs})
    methods["exact"] = sp.Exact
    heads = ex.run_methods(lambda key: attention_model(key, args.d_model, args.heads), methods,
                           stream, seeds=seeds, shift=shift, desc="heads", log=log)
    rec_h = ex.recoveries(heads, "f=0 (Immediate)", "exact")

    rows = [[f"LSTM n={n}: {m}", ex.fmt_sci(r["post_shift_mse"]),
             ex.fmt_mean_sd(rec_l[m], 100, unit="%"),
             {"k=4": "k=4 matches exact"}.get(m, "")] for m, r in lstm.items()]
    paper_h = {0.3333: "borderline", 0.5: "outperforms the dense reference", 1.0: "(dense)"}
    rows += [[f"heads: {m}", ex.fmt_sci(r["post_shift_mse"]),
              ex.fmt_mean_sd(rec_h[m], 100, unit="%"),
              next((v for f, v in paper_h.items() if m.startswith(f"f={f:.2g} ")), "")]
             for m, r in heads.items()]
    table = ex.markdown_table(["model: method", "post-shift MSE", "recovery", "paper"], rows)
    notes = (f"Sine 2pi/25 -> 2pi/12 at step {shift} of {steps}; OnlineLearner, Adam 3e-3, an "
             f"update every step; {seeds} seeds. LSTM: n={n}, linear readout, baseline k=0 "
             f"(= Diagonal). Heads: FeedbackAttention (LinearAttention, {args.heads} heads, "
             f"d_model {args.d_model}, decay 0.9, its output fed back as input), linear "
             "readout, baseline f=0 (= Immediate); HeadSparse resamples its heads every step.")
    fig, (a1, a2) = ex.figure(2)
    ex.plot_curves(a1, lstm, shift)
    a1.set_title(f"LSTM n={n}")
    ex.plot_curves(a2, heads, shift)
    a2.set_title(f"FeedbackAttention, {args.heads} heads")
    ex.write_results("lstm_heads", args.out, command=ex.command_line(argv, __file__),
                     title="LSTM and transformer heads: sparse vs exact transport", table=table,
                     notes=notes, figure=fig,
                     data={"n": n, "heads": args.heads, "d_model": args.d_model, "steps": steps,
                           "shift": shift, "seeds": seeds, "lstm": lstm, "lstm_recovery": rec_l,
                           "attention": heads, "attention_recovery": rec_h})
    print(table)
    return lstm, heads


if __name__ == "__main__":
    main()
