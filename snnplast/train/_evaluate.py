"""``evaluate``: a trained run's model on another data set: accuracy overall, per class, per
speaker, and a confusion matrix."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._atomic import atomic_write
from .._errors import ValidationError
from ._batches import padded_batches
from ._checkpoint import load_model, output_folder, write_json
from ._config import positive_int
from ._objective import sample_objective
from ._trainer import SUMMARY_FILE

EVALUATION_FILE = "evaluation.json"
CONFUSION_FILE = "confusion.png"
_SHD_CHANNELS = 700


@eqx.filter_jit
def _scores(model, x):
    labels = jnp.zeros(x.shape[0], jnp.int32)
    _, scores = jax.vmap(sample_objective, in_axes=(None, 0, 0))(
        model, x.astype(jnp.float32), labels
    )
    return scores


def class_scores(model, x: np.ndarray, batch: int = 250) -> np.ndarray:
    """Every sample's class scores: the readout summed over time (its argmax is the prediction).

    **Arguments:**

    - `model`: a trained network (one sample's cell).
    - `x`: ``[N, T, C]`` binned inputs.
    - `batch`: samples per call (memory only; the result does not depend on it).

    **Returns:** ``[N, K]`` float32.
    """
    out = []
    size = max(1, min(batch, len(x)))
    for xb, _, weight in padded_batches(x, np.zeros(len(x), np.int32), size):
        out.append(np.asarray(_scores(model, xb))[weight > 0])
    return np.concatenate(out)


def _accuracy_by(groups: np.ndarray, correct: np.ndarray, names=None) -> dict:
    table = {}
    for g in np.unique(groups):
        mine = groups == g
        name = str(names[g]) if names and 0 <= g < len(names) else str(int(g))
        table[name] = {"n": int(mine.sum()), "accuracy": float(correct[mine].mean())}
    return table


def scores_of(
    y: np.ndarray, scores: np.ndarray, speakers: np.ndarray, class_names, speaker_names=None
) -> dict:
    """Accuracy overall, per class and per speaker, and the confusion matrix.

    A prediction is the argmax over all the model's classes. ``accuracy_present_classes`` is the
    accuracy when the argmax is taken over only the classes that occur in `y` (a model of SHD's
    20 words tested on English digits alone then cannot answer in German).

    **Arguments:**

    - `y`: ``[N]`` true classes; `scores`: ``[N, K]``; `speakers`: ``[N]`` speaker ids.
    - `class_names`: ``K`` names; `speaker_names`: the name of each speaker id, if known.

    **Returns:** a JSON-ready dict.
    """
    predicted = np.argmax(scores, axis=-1)
    correct = predicted == y
    present = np.unique(y)
    within = present[np.argmax(scores[:, present], axis=-1)] == y
    n_classes = len(class_names)
    confusion = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(confusion, (y, predicted), 1)
    per_speaker = _accuracy_by(speakers, correct, speaker_names)
    return {
        "n": len(y),
        "accuracy": float(correct.mean()),
        "accuracy_present_classes": float(within.mean()),
        "per_class": _accuracy_by(y, correct, class_names),
        "per_speaker": per_speaker,
        "speaker_mean_accuracy": float(np.mean([v["accuracy"] for v in per_speaker.values()])),
        "class_names": list(class_names),
        "confusion": confusion.tolist(),
    }


def _run_binning(run_dir: Path) -> tuple[int, int, str]:
    """``(n_bins, pool, time_axis)`` the run's model was trained with."""
    try:
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
        # The bins the model was trained on: runs made before the config recorded the data's
        # own may name another count there.
        n_bins = int(summary.get("dataset", {}).get("n_bins") or summary["config"]["n_bins"])
        # Runs from before the option binned by absolute time.
        time_axis = str(summary["config"].get("time_axis", "absolute"))
        n_in = int(summary["model"]["n_in"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{run_dir / SUMMARY_FILE}: unreadable run summary ({e})") from None
    if _SHD_CHANNELS % n_in:
        raise ValueError(
            f"{run_dir}: its model takes {n_in} inputs, which does not pool {_SHD_CHANNELS} "
            "cochlea channels evenly; evaluate supports models trained on SHD-layout data"
        )
    return n_bins, _SHD_CHANNELS // n_in, time_axis


def _run_class_names(run_dir: Path) -> list[str] | None:
    """The class names the run trained on (None for runs made before they were recorded)."""
    try:
        names = json.loads((run_dir / SUMMARY_FILE).read_text())["dataset"]["class_names"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [str(name) for name in names] if isinstance(names, list) else None


def _spelling(name: str) -> str:
    return name.strip().casefold().replace("ü", "ue").replace("ä", "ae").replace("ö", "oe")


def _as_model_classes(split, names, model_names, data):
    """`split` with its labels renumbered as the model's classes of the same names: a folder
    holding some of the words (sorted into classes of its own) must be scored against the
    model's numbering, not its own."""
    names = tuple(str(name) for name in names)
    if model_names is None or tuple(model_names) == names:
        return split, names
    # Spelled as another writer may spell them: "Seven", "fünf" / "fuenf", " yes ".
    index = {_spelling(name): i for i, name in enumerate(model_names)}
    present = [names[c] for c in np.unique(split.y)]
    unknown = [name for name in present if _spelling(name) not in index]
    if unknown:
        raise ValueError(
            f"{data}: has labels the model never learnt ({', '.join(unknown[:5])}); its classes "
            f"are {', '.join(model_names[:8])}{' ...' if len(model_names) > 8 else ''}"
        )
    renumber = np.array([index.get(_spelling(name), -1) for name in names], dtype=split.y.dtype)
    return type(split)(x=split.x, y=renumber[split.y], speakers=split.speakers), tuple(model_names)


def _load(data, labels, n_bins, pool, time_axis, cache_dir, progress, all_recordings=False):
    """``(split, class_names, speaker_names or None, source, scored)`` of `data`: a folder of
    recordings (its test list's, if it has one, unless `all_recordings`), or any data set
    :func:`load_dataset` knows (its test split; one file whole); `scored` says which samples
    these are."""
    from ..data import is_recordings_folder, load_test_split, read_names
    from ..data._recordings.load import scored_recordings

    if isinstance(data, str | os.PathLike) and is_recordings_folder(data):
        split, names, speakers, scored = scored_recordings(
            data, labels=labels, n_bins=n_bins, pool=pool, cache_dir=cache_dir,
            progress=progress, time_axis=time_axis, test_list=not all_recordings,
        )  # fmt: skip
        return split, names, speakers, f"recordings:{Path(data).expanduser().resolve()}", scored
    for option, given in (("--labels", labels is not None), ("--all-recordings", all_recordings)):
        if given:
            raise ValidationError(f"{option} applies to a folder of recordings; {data} is not one")
    # The test split alone: the training file is not read (SSC's holds 75k samples).
    split, class_names, source = load_test_split(
        data, n_bins=n_bins, pool=pool, cache_dir=cache_dir, progress=progress,
        time_axis=time_axis,
    )  # fmt: skip
    kind, _, where = source.partition(":")
    if kind == "file":
        from ..data import cache_root
        from ..data._loading.single_file import readable_file

        # A file convert-audio wrote names its speakers (an archive: the file it holds).
        speakers = read_names(readable_file(Path(where), cache_root(cache_dir)))[1]
        scored = f"all {len(split.y)} samples of {where}"
    else:
        speakers, scored = None, f"the {len(split.y)} samples of the test split of {where}"
    return split, class_names, speakers, source, scored


def _slug(data) -> str:
    text = Path(str(data)).expanduser().name or str(data)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "data"


def plot_confusion(result: dict, out: str | os.PathLike, title: str = "") -> Path:
    """Save the confusion matrix (true classes present in the data x every predicted class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = np.asarray(result["confusion"])
    names = result["class_names"]
    rows = np.flatnonzero(confusion.sum(1))
    cols = np.flatnonzero(confusion.sum(0) + confusion.sum(1))
    shown = confusion[np.ix_(rows, cols)]
    fraction = shown / np.maximum(shown.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.42 * len(cols), 1.2 + 0.42 * len(rows)))
    ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if shown[i, j]:
                ax.text(j, i, str(shown[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if fraction[i, j] > 0.6 else "black")  # fmt: skip
    ax.set_xticks(range(len(cols)), [names[c] for c in cols], rotation=90, fontsize=8)
    ax.set_yticks(range(len(rows)), [names[r] for r in rows], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {100 * result['accuracy']:.1f}% (n = {result['n']})",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    out = Path(out)

    def write(tmp: Path) -> None:
        fig.savefig(tmp, dpi=120, format=out.suffix.lstrip(".") or "png")

    try:
        return atomic_write(out, write)
    finally:
        plt.close(fig)


def evaluate(
    run_dir: str | os.PathLike,
    data,
    *,
    labels: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    batch: int = 250,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    all_recordings: bool = False,
) -> dict:
    """A trained run's model on another data set's test split, or on a folder of recordings.

    The data is binned as the run's was (its time bins and time axis, and pooling that gives
    the model's input width). A folder of ``.wav`` files, at any sample rate, is converted with
    the same cochlea on the fly and cached (see :func:`snnplast.data.convert_audio` for how files
    are labelled). Labels must be classes the model knows: SHD's digits line up with the default
    data set's classes. A prediction is the argmax over all the model's classes.

    Files written in `out` (default ``RUN_DIR/evaluate-<data name>/``): ``evaluation.json``
    (what is returned) and ``confusion.png``.

    **Arguments:**

    - `run_dir`: a folder written by ``snnplast train`` (``model.eqx``, ``model.json``,
      ``summary.json``).
    - `data`: ``"speech"``, ``"synth"``, ``"shd"``, ``"ssc"``, a folder of SHD or SSC files
      (its test split is used), one SHD-layout ``.h5`` file (all of it: ``shd_test.h5`` kept
      anywhere, or a file ``convert-audio`` wrote), or a folder of recordings (WAV, FLAC, ...;
      where it has Speech Commands' ``testing_list.txt``, only the recordings listed there).
    - `labels`: a CSV ``file,label[,speaker]`` for a WAV folder whose names carry no labels.
    - `out`: where to write the files.
    - `batch`: samples per evaluation call (memory only).
    - `cache_dir`: the cache root.
    - `progress`: show progress bars while converting and binning.
    - `all_recordings`: score every recording of a folder of recordings, also where its
      ``testing_list.txt`` names a test split (those listed are the recordings training on the
      folder holds out; the others it trains on). Only for a folder of recordings.

    **Returns:** a dict with ``accuracy``, ``accuracy_present_classes``, ``per_class``, ``per_speaker`` (each ``{name: {n,
    accuracy}}``), ``speaker_mean_accuracy``, ``confusion`` (true x predicted counts over all
    the model's classes), ``class_names``, ``n``, ``data``, ``scored`` (which samples, in
    words), ``run``, ``out`` and ``files``.
    """
    run_dir = Path(run_dir).expanduser()
    # Checked before minutes of conversion, not after them.
    positive_int("batch", batch)
    out = run_dir / f"evaluate-{_slug(data)}" if out is None else output_folder(out, "out")
    model = load_model(run_dir)
    n_bins, pool, time_axis = _run_binning(run_dir)
    split, names, speakers, source, scored = _load(
        data, labels, n_bins, pool, time_axis, cache_dir, progress, all_recordings
    )
    n_classes = int(json.loads((run_dir / "model.json").read_text())["n_classes"])
    if len(split.y) == 0:
        raise ValueError(f"{data}: holds no samples to evaluate")
    split, names = _as_model_classes(split, names, _run_class_names(run_dir), data)
    if split.y.max() >= n_classes:
        raise ValueError(
            f"{data}: has labels up to {int(split.y.max())} ({names[int(split.y.max())]}), but the "
            f"model in {run_dir} knows {n_classes} classes"
        )
    names = tuple(names[:n_classes]) + tuple(str(i) for i in range(len(names), n_classes))
    scores = class_scores(model, split.x, batch)
    result = scores_of(split.y, scores, split.speakers, names, speakers)
    out.mkdir(parents=True, exist_ok=True)
    result = {**result, "data": source, "scored": scored, "run": str(run_dir.resolve()),
              "out": str(out), "files": [EVALUATION_FILE, CONFUSION_FILE]}  # fmt: skip
    plot_confusion(result, out / CONFUSION_FILE, title=f"{run_dir.name} on {_slug(data)}: "
                   f"{100 * result['accuracy']:.1f}% (n = {result['n']})")  # fmt: skip
    write_json(out / EVALUATION_FILE, result)
    return result
