"""A folder of the user's own labelled recordings (WAV, FLAC, ...), made one SHD-layout spike file.

Labels and speakers come from the folder's layout (see :mod:`.layouts`): file names
``LABEL_speaker_ID.wav`` or ``LABEL_SPEAKER_INDEX.wav`` (the Free Spoken Digit Dataset), one
folder per label (Speech Commands), or a CSV. A label is a class index or a class name. When
every label is one of SHD's (an index 0-19 or a name such as ``seven``/``sieben``), SHD's class
list is used, so the file lines up with SHD; otherwise the classes are the distinct labels,
sorted. Speakers of any name get integer ids; the name of each id is stored in the file.

A recording that cannot be used (an empty file, one that does not decode, one without sound or
under 10 ms) is left out with a :class:`SkippedRecording` warning naming it and why; the file
lists them in ``extra/skipped``. Only a folder where nothing is left is an error.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import h5py
import numpy as np

from ..._atomic import atomic_write
from ..._errors import ValidationError
from .._audio.formats import read_audio
from .._audio.sidecar import save_sidecar
from .._audio.wav import resample
from .._cochlea.basilar_membrane import fast_length
from .._cochlea.cochlea import Cochlea, cochlea_batch
from .._shd.file import write_shd_h5
from .._speech.corpus import SHD_KEYS
from .layouts import Recording, find_layout, from_csv, speaker_ids

# Recordings are padded (centred, with silence) to lengths on this grid, so that clips share the
# basilar membrane's transfer matrix; the spike times are then shifted back to the recording's
# own clock and cut to its duration.
_LENGTH_STEP_S = 0.1
# Where the speaker of each id is named (beside SHD's own extra/speaker, which holds the ids).
SPEAKER_NAMES = "extra/speaker_names"
# The recordings left out, one ``NAME: why`` line each (NAME relative to the input folder).
SKIPPED = "extra/skipped"
# The shortest recording converted: shorter ones hold no word.
_MIN_SECONDS = 0.01


class SkippedRecording(UserWarning):
    """A recording :func:`convert_audio` left out (empty, undecodable, silent or too short)."""


# What makes a decoded clip unusable: (test of samples and rate, why), tried in order.
_UNUSABLE = (
    (lambda x, rate: not np.any(x), lambda x, rate: "is silent (all samples 0)"),
    (
        lambda x, rate: x.size < _MIN_SECONDS * rate,
        lambda x, rate: f"is {x.size / rate * 1e3:.1f} ms long; at least {_MIN_SECONDS * 1e3:g} ms",
    ),
)


def _read_clip(path: Path) -> tuple[np.ndarray, int]:
    """`path`'s samples and rate, or a one-line `ValueError` saying why they cannot be used."""
    if path.is_file() and path.stat().st_size == 0:
        raise ValidationError(f"{path}: is empty (0 bytes)")
    x, rate = read_audio(path)
    for unusable, why in _UNUSABLE:
        if unusable(x, rate):
            raise ValidationError(f"{path}: {why(x, rate)}")
    return x, rate


def _usable(recordings: list[Recording]) -> tuple[list[Recording], list, list[str]]:
    """``(kept, audio, skipped)``: the recordings that read as sound, their ``(samples, rate)``,
    and ``NAME: why`` for each of the others (each also warned about)."""
    kept, audio, skipped = [], [], []
    for rec in recordings:
        try:
            audio.append(_read_clip(rec.path))
        except (ValueError, FileNotFoundError) as e:
            why = str(e).removeprefix(f"{rec.path}: ")
            warnings.warn(f"skipped {rec.path}: {why}", SkippedRecording, stacklevel=3)
            skipped.append(f"{rec.name}: {why}")
            continue
        kept.append(rec)
    return kept, audio, skipped


def _file_seed(seed: int, name: str) -> int:
    # From the file's name (its path within the input folder), not its position: adding a file
    # leaves the others' spikes unchanged.
    state = np.random.SeedSequence([seed, *name.encode()]).generate_state(1)
    return int(state[0])


def _classes(labels: list[str]) -> tuple[list[int], list[str]]:
    """Class indices of `labels` and the class names."""
    shd = {name: i for i, name in enumerate(SHD_KEYS)}
    shd.update({"fünf": SHD_KEYS.index("fuenf")})
    lowered = [label.lower() for label in labels]
    if all(s.isdigit() and int(s) < len(SHD_KEYS) or s in shd for s in lowered):
        return [int(s) if s.isdigit() else shd[s] for s in lowered], list(SHD_KEYS)
    if all(s.isdigit() for s in lowered):
        top = max(int(s) for s in lowered)
        return [int(s) for s in lowered], [str(i) for i in range(top + 1)]
    names = sorted(set(labels))
    return [names.index(label) for label in labels], names


def find_recordings(
    in_dir: str | os.PathLike, labels: str | os.PathLike | None = None
) -> list[Recording]:
    """The labelled recordings of `in_dir`.

    **Arguments:**

    - `in_dir`: a folder of labelled audio files (WAV, FLAC, ...), or of one folder per label.
    - `labels`: a CSV (``file,label[,speaker]``); None reads the folder's layout.

    **Returns:** a list of :class:`Recording`, sorted by path within `in_dir`.

    **Raises:** `ValueError` naming the file (one line) for a file that is not audio, a file with
    no label, mixed layouts or an empty folder; `FileNotFoundError` when `in_dir` or `labels` is absent.
    """
    if not str(in_dir).strip():
        raise ValidationError(f"in_dir {str(in_dir)!r}: name a folder of recordings ('.' for "
                              "the working folder)")
    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise FileNotFoundError(f"{in_dir}: no such folder")
    found = find_layout(in_dir) if labels is None else from_csv(in_dir, Path(labels))
    if not found:
        raise ValidationError(f"{in_dir}: no audio files to convert")
    return found


# Recordings per cochlea process when `workers` is not given.
_CLIPS_PER_WORKER = 32


def convert_audio(
    in_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    seed: int = 0,
    exact_length: bool = False,
    workers: int | None = None,
    model: Cochlea | None = None,
    progress: bool = True,
) -> Path:
    """Convert labelled audio files to one spike file in SHD layout (with their audio beside it).

    Every file is read and checked before any spikes are computed, and the output appears only
    when complete: a bad input leaves no output file. A recording that cannot be used (an empty
    file, one that does not decode, one without sound or under 10 ms) is left out with a
    :class:`SkippedRecording` warning naming it and why, and listed in the output's
    ``extra/skipped`` (:func:`read_skipped`); a folder where none is left is an error.

    **Arguments:**

    - `in_dir`: folder of audio files (any format :func:`read_audio` reads, any channels) named
      ``LABEL_speaker_ID.wav`` or ``LABEL_SPEAKER_INDEX.wav``, or of one folder per label (see
      :func:`find_recordings`).
    - `out`: the ``.h5`` file to write (replaced if present). Besides SHD's datasets it holds
      ``extra/speaker_names``: the speaker name of each id in ``extra/speaker``.
    - `labels`: CSV with ``file,label[,speaker]``; None reads the folder's layout.
    - `seed`: the cochlea's randomness (file ``i`` uses a seed derived from `seed` and its name).
    - `exact_length`: run each recording at its own length, exactly as Lauscher does. Otherwise
      recordings are centred in silence padded to a 0.1 s grid, so that many share the basilar
      membrane's transfer matrix (seconds each to compute); times still start at the recording.
    - `workers`: cochlea processes (default: one per CPU core, at most 8, and one per 32
      recordings: a short folder is converted in this process).
    - `model`: the cochlea's parameters (default: Lauscher's).
    - `progress`: show a progress bar.

    **Returns:** `out`.
    """
    model = Cochlea() if model is None else model
    out = Path(out).expanduser()
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise ValidationError(f"--out {out}: must name an .h5 file")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out.parent}: output folder does not exist")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValidationError(f"seed must be an int in 0..2**32-1, got {seed!r}")
    recordings = find_recordings(in_dir, labels)
    return convert_recordings(
        recordings, out, seed=seed, exact_length=exact_length, workers=workers, model=model,
        progress=progress, where=Path(in_dir),
    )  # fmt: skip


def convert_recordings(
    recordings: list[Recording],
    out: Path,
    *,
    seed: int,
    exact_length: bool,
    workers: int | None,
    model: Cochlea,
    progress: bool,
    where: Path,
) -> Path:
    """:func:`convert_audio` of `recordings` (found in the folder `where`), arguments checked."""
    recordings, audio, skipped = _usable(recordings)
    if not recordings:
        raise ValidationError(
            f"{where}: none of its {len(skipped)} recordings could be converted (the first: "
            f"{skipped[0]})"
        )
    classes, keys = _classes([rec.label for rec in recordings])
    if workers is None:
        # A worker is a fresh interpreter (seconds to start, and its own transfer matrices);
        # at ~0.1 s of cochlea per clip it pays for itself only past a few dozen clips.
        workers = max(1, min(os.cpu_count() or 1, 8, len(recordings) // _CLIPS_PER_WORKER))

    # At the cochlea's working rate from here on: padding lengths are chosen there.
    rates = [model.working_rate(r) for _, r in audio]
    clips, offsets = [], []
    for (x, own_rate), rate in zip(audio, rates):
        x = resample(x, own_rate, rate)
        if exact_length:
            clips.append(x)
            offsets.append(0)
            continue
        step = _LENGTH_STEP_S * rate
        n = fast_length(int(np.ceil(x.size / step) * step))
        clip = np.zeros(n)
        # An even offset keeps the shift back a whole number of output samples (half rate).
        start = (n - x.size) // 2 & ~1
        clip[start : start + x.size] = x
        clips.append(clip)
        offsets.append(start)
    times, units = [None] * len(clips), [None] * len(clips)
    for rate in sorted(set(rates)):
        idx = [i for i, r in enumerate(rates) if r == rate]
        seeds = [_file_seed(seed, recordings[i].name) for i in idx]
        spikes = cochlea_batch(
            [clips[i] for i in idx], rate, seeds=seeds, model=model, workers=workers,
            progress=f"cochlea {rate} Hz" if progress else False,
        )  # fmt: skip
        out_rate = rate // 2
        for i, s in zip(idx, spikes):
            # Back to the recording's clock: drop what fell in the padding.
            t = s.times - offsets[i] / rate
            x, own_rate = audio[i]
            keep = (t >= 0) & (t < x.size / own_rate)
            times[i] = np.round(t[keep] * out_rate) / out_rate
            units[i] = s.units[keep]
    speakers, names = speaker_ids([rec.speaker for rec in recordings])

    def write(tmp: Path) -> None:
        write_shd_h5(tmp, times, units, classes, speakers, keys, n_channels=model.n_channels)
        with h5py.File(tmp, "a") as f:
            f.create_dataset(SPEAKER_NAMES, data=np.array([n.encode() for n in names]))
            f.create_dataset(SKIPPED, data=np.array([n.encode() for n in skipped], dtype=bytes))

    atomic_write(out, write)
    save_sidecar(out, [x for x, _ in audio], [r for _, r in audio])
    return out


def read_skipped(path: str | os.PathLike) -> list[str]:
    """The recordings a converted file left out, ``NAME: why`` each (none for other files)."""
    with h5py.File(path, "r") as f:
        skipped = f.get(SKIPPED)
        return [] if skipped is None else [n.decode() for n in skipped[()]]


def converted_recordings(recordings: list[Recording], path: str | os.PathLike) -> list[Recording]:
    """The recordings of `recordings` that the converted file `path` holds, in its order: all
    but those it lists as skipped."""
    names = {rec.name for rec in recordings}
    left_out = set()
    for entry in read_skipped(path):
        parts = entry.split(": ")  # "NAME: why", where NAME itself may hold ": "
        left_out.update(n for k in range(1, len(parts)) if (n := ": ".join(parts[:k])) in names)
    return [rec for rec in recordings if rec.name not in left_out]


def read_names(path: str | os.PathLike) -> tuple[list[str], list[str] | None]:
    """The class names and the speaker names of a converted file, each indexed by its id.

    **Returns:** ``(classes, speakers)``; `speakers` is None for a file without
    ``extra/speaker_names`` (SHD's own, for one).
    """
    with h5py.File(path, "r") as f:
        classes = [k.decode() for k in f["extra/keys"][()]]
        names = f.get(SPEAKER_NAMES)
        speakers = None if names is None else [n.decode() for n in names[()]]
    return classes, speakers
