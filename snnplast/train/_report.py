"""The report of a comparison: ``compare.md`` (tables and notes) and ``compare.png`` (curves)."""

from __future__ import annotations

import io


def format_bytes(n) -> str:
    """A byte count for people: ``"135.6 KiB"``, ``"56.8 MiB"``; ``"n/a"`` for None."""
    if n is None:
        return "n/a"
    if n < 2**10:
        return f"{n} B"
    if n < 2**20:
        return f"{n / 2**10:.1f} KiB"
    return f"{n / 2**20:.1f} MiB" if n < 2**30 else f"{n / 2**30:.2f} GiB"


def _pct(a) -> str:
    return "n/a" if a is None else f"{100 * a:.1f}%"


def _num(a, spec: str) -> str:
    return "n/a" if a is None else format(a, spec)


def one_line(r: dict) -> str:
    state = f" ({r['status']}: {r['error']})" if r["error"] else ""
    return (
        f"{r['method']}: test {_pct(r['test_accuracy'])}, best val "
        f"{_pct(r['best_val_accuracy'])}, {_num(r['seconds_per_epoch'], '.2f')} s/epoch, "
        f"grad cosine vs bptt {_num(r['cosine'], '.4f')}{state}"
    )


def markdown(report: dict) -> str:
    """The ``compare.md`` text of a :func:`compare` report."""
    c, d = report["config"], report["dataset"]
    header = (
        f"Model `{c['model']}`, {c['hidden']} hidden, {c['epochs']} epochs, batch {c['batch']}, "
        f"lr {c['lr']} ({c.get('schedule', 'constant')}), channel shift "
        f"{c.get('channel_shift', 0)}, seed {c['seed']}, lam {c['lam']} (online methods); "
        f"data `{c['data']}` "
        f"(`{d['source']}`: {d['n_train']} train / {d['n_val']} val / {d['n_test']} test, "
        f"{d['n_classes']} classes, {d['n_channels']} channels, {d['n_bins']} bins)."
    )
    columns = (
        "method", "test acc", "best val acc (epoch)", "train s / epoch", "compile s",
        "step scratch", "peak RSS", "grad cosine vs BPTT",
    )  # fmt: skip
    lines = [
        "# snnplast compare",
        "",
        header,
        "",
        "| " + " | ".join(columns) + " |",
        "|---" + "|--:" * (len(columns) - 1) + "|",
    ]
    for r in report["runs"]:
        if not r["trained"]:
            lines.append(
                f"| {r['method']} (reference, not trained) | | | | | | "
                f"| {_num(r['cosine'], '.4f')} |"
            )
            continue
        best = _pct(r["best_val_accuracy"])
        if r["best_epoch"] is not None:
            best += f" ({r['best_epoch']})"
        name = r["method"] + (f" ({r['status']})" if r["error"] else "")
        lines.append(
            f"| {name} | {_pct(r['test_accuracy'])} | {best} "
            f"| {_num(r['seconds_per_epoch'], '.2f')} | {_num(r['compile_seconds'], '.1f')} "
            f"| {format_bytes(r['step_temp_bytes'])} | {format_bytes(r['peak_memory_bytes'])} "
            f"| {_num(r['cosine'], '.4f')} |"
        )
    n_batch = len(report["gradient_batch"]["indices"])
    notes = (
        (
            "**test acc**: after the last epoch; **best val acc**: the highest validation accuracy "
            "and the first epoch reaching it."
        ),
        (
            "**train s / epoch**: the training steps of an epoch (mean over epochs), without "
            "evaluation and without the one-off **compile** of the training step."
        ),
        (
            "**step scratch**: the temporary memory XLA allocates for one compiled training step, "
            "the per-method memory cost. **peak RSS** is the whole process's high-water mark: it "
            "includes the data and the runtime, and the runs share one process, so it only grows "
            "down the table and is not a per-method number."
        ),
        (
            "**grad cosine vs BPTT**: cosine similarity of the method's gradient with BPTT's, all "
            f"parameters flattened into one vector, at the initial weights (seed {c['seed']}) on "
            f"the first batch `fit` trains on ({n_batch} samples: the first batch of epoch 1's "
            "shuffle, channel-shifted as `fit` shifts it). 1 means the same direction as the "
            "exact gradient."
        ),
    )
    lines += ["", *(f"- {note}" for note in notes)]
    for r in report["runs"]:
        if r["error"]:
            lines.append(
                f"- **{r['method']}** stopped: {r['error']}; its row shows the last "
                "complete epoch, if any."
            )
    lines += ["", *_parameter_table(report["runs"])]
    lines += ["", "Command:", "", "```", report["command"], "```", ""]
    return "\n".join(lines)


def _parameter_table(runs: list[dict]) -> list[str]:
    """The first-step gradient's cosine with BPTT's per parameter array, and its norm ratio."""
    names = list(runs[0]["cosine_by_parameter"])
    intro = (
        "Where the gradients differ: the same cosine per parameter array (one large array, "
        "often the readout's, can dominate the overall cosine), and the gradient's norm relative "
        "to BPTT's."
    )
    lines = [
        intro,
        "",
        "| method | " + " | ".join(f"`{name}`" for name in names) + " | norm / BPTT's |",
        "|---" + "|--:" * (len(names) + 1) + "|",
    ]
    for r in runs:
        cosines = [_num(r["cosine_by_parameter"][name], ".4f") for name in names]
        lines.append(
            f"| {r['method']} | " + " | ".join(cosines) + f" | {_num(r['norm_ratio'], '.3f')} |"
        )
    return lines


def plot(report: dict) -> bytes:
    """The ``compare.png`` of a :func:`compare` report, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in report["runs"] if r["trained"]]
    colors = {r["method"]: f"C{i}" for i, r in enumerate(runs)}
    fig, (acc_ax, loss_ax, bar_ax) = plt.subplots(1, 3, figsize=(15, 4.6))
    # Methods often coincide (the same accuracy each epoch): markers and dashes keep each visible.
    markers, dashes = "osD^vP*X", ("-", "--", ":", "-.")
    for i, r in enumerate(runs):
        epochs = [p["epoch"] for p in r["curves"]]
        style = {
            "color": colors[r["method"]],
            "marker": markers[i % len(markers)],
            "linestyle": dashes[i % len(dashes)],
            "markersize": 6 - 0.6 * (i % 4),
            "label": r["method"],
        }
        val = [
            (e, 100 * p["val_accuracy"])
            for e, p in zip(epochs, r["curves"], strict=True)
            if p["val_accuracy"] is not None
        ]
        if val:
            acc_ax.plot(*zip(*val, strict=True), **style)
        loss_ax.plot(epochs, [p["train_loss"] for p in r["curves"]], **style)
    acc_ax.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 102))
    loss_ax.set(
        title="training loss", xlabel="epoch", ylabel="cross-entropy summed over time steps"
    )
    for ax in (acc_ax, loss_ax):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a run that diverged in epoch 1 draws nothing
            ax.legend(fontsize=9)

    names = [r["method"] for r in runs]
    heights = [100 * (r["test_accuracy"] or 0.0) for r in runs]
    bars = bar_ax.bar(range(len(runs)), heights, color=[colors[n] for n in names])
    bar_ax.bar_label(bars, labels=[_pct(r["test_accuracy"]) for r in runs], padding=2)
    bar_ax.set_xticks(
        range(len(runs)), [f"{r['method']}\ncos {_num(r['cosine'], '.3f')}" for r in runs]
    )
    bar_ax.set(title="test accuracy after the last epoch", ylabel="accuracy (%)", ylim=(0, 110))
    bar_ax.grid(axis="y", alpha=0.3)

    c, d = report["config"], report["dataset"]
    fig.suptitle(
        f"{c['model']}, {c['hidden']} hidden, {c['epochs']} epochs on {c['data']} "
        f"({d['n_classes']} classes), seed {c['seed']}; cos = first-step gradient "
        "cosine with BPTT"
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=110)
    finally:
        plt.close(fig)
    return buffer.getvalue()
