"""``load_dataset``: from a name or a folder of SHD files to dense, cached, speaker-split arrays."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..._errors import ValidationError, did_you_mean
from .._cache import (
    cache_key,
    cache_root,
    file_fingerprint,
    load_npz,
    save_npz_atomic,
    shd_data_dir,
)
from .._shd.family import FAMILIES, SHD, TEST, TRAIN, VALID, Family, present_files
from .._shd.file import (
    SHDFormatError,
    SHDMissingError,
    check_same_channels,
    check_shd_file,
    iter_shd_events,
)
from .._shd.synth import SYNTH_VERSION, make_synth_shd
from .._shd.tonic_split import find_split_file, read_split_header, split_filename
from .binning import bin_samples, check_binning
from .dataset import SpikeDataset, Split
from .speakers import n_val_speakers, split_by_speaker
from .time_axis import check_time_axis

# Bump when binning or the cached arrays change meaning, so old cache entries are not reused.
_BINNED_VERSION = 1
# The stand-in is always generated from this seed: `seed` of load_dataset only picks the
# validation speakers, so runs with different seeds see the same data.
_SYNTH_SEED = 0
_SYNTH_SIZES = {"n_per_class_train": 100, "n_per_class_test": 25}
# What `snnplast train` and `load_dataset()` use when no data set is named: spoken digits made on
# this machine (eSpeak NG through the cochlea), generated into the cache on first use.
DEFAULT_DATA = "speech"
# The data sets known by name; anything else is a folder.
DATA_NAMES = ("synth", "speech", *FAMILIES)


def _allowed() -> str:
    return (
        "'synth', 'speech', 'shd', 'ssc', a folder containing shd_train.h5 and shd_test.h5 (or "
        "SSC's ssc_train.h5, ssc_valid.h5 and ssc_test.h5), one such .h5 file, or a folder of "
        "labelled recordings"
    )


def _kind(value) -> str:
    """`value` for a one-line message: its repr if short, else its type (a data set's arrays
    would print over many lines)."""
    text = repr(value)
    return text if len(text) <= 60 and "\n" not in text else f"a {type(value).__name__}"


def _check_name(name_or_path, where: str) -> None:
    """A one-line error unless `name_or_path` is a name or a path, and not an empty one (which
    ``Path`` would read as the working folder)."""
    if not isinstance(name_or_path, str | os.PathLike):
        raise ValidationError(f"{where}: got {_kind(name_or_path)}; allowed: {_allowed()}")
    if not str(name_or_path).strip():
        raise ValidationError(f"{where}: got an empty name {str(name_or_path)!r}; allowed: "
                              f"{_allowed()} (the working folder is '.')")


def _synth_folder(cache: Path, progress: bool) -> Path:
    key = cache_key(version=SYNTH_VERSION, seed=_SYNTH_SEED, **_SYNTH_SIZES)
    folder = cache / "synth" / key
    complete = all((folder / split_filename(train)).is_file() for train in (True, False))
    if not complete:
        make_synth_shd(folder, seed=_SYNTH_SEED, progress=progress, **_SYNTH_SIZES)
    return folder


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _missing_all(folder: Path, hint: str, family: Family) -> SHDMissingError:
    files = list(family.filenames())
    downloads = _and(
        [f"https://zenkelab.org/datasets/{files[0]}.zip"] + [f"{n}.zip" for n in files[1:]]
    )
    return SHDMissingError(
        f"no {family.title} files in {folder}: put {_and(files)} exactly there{hint} (or the "
        f"downloads {downloads}, unpacked on first use); nothing is downloaded automatically"
    )


def _family_files(
    folder: Path, family: Family, hint: str, cache: Path, progress: bool, splits: tuple | None
) -> None:
    """Every file of `family` (of `splits`, if given) is in `folder` (archives unpacked), or a
    one-line error naming the missing ones."""
    found, missing = [], []
    for split in family.splits if splits is None else splits:
        try:
            find_split_file(folder, split, cache, progress=progress, family=family)
            found.append(family.filename(split))
        except SHDMissingError as e:
            missing.append((family.filename(split), e))
    if not found and splits is not None and len(splits) == 1:
        raise SHDMissingError(f"{missing[0][1]}{hint}")
    if not found:
        raise _missing_all(folder, hint, family)
    if not missing:
        return
    there = f"{', '.join(found)} {'is' if len(found) == 1 else 'are'} there"
    if len(missing) == 1:
        # Name the one that is missing, not "no SHD files".
        raise SHDMissingError(f"{there}, but: {missing[0][1]}{hint}")
    names = " and ".join(name for name, _ in missing)
    raise SHDMissingError(
        f"{there}, but {names} are not, in {folder}: put them beside it{hint} (or their "
        "downloads from https://zenkelab.org/datasets/, unpacked on first use); nothing is "
        "downloaded automatically"
    )


def _check_labels(labels, name_or_path) -> None:
    """`labels` (a CSV) go with a folder of recordings only."""
    from .._recordings.load import is_recordings_folder

    if labels is not None and not (
        isinstance(name_or_path, str | os.PathLike) and is_recordings_folder(name_or_path)
    ):
        raise ValidationError(
            f"labels {str(labels)!r}: label a folder of recordings; {str(name_or_path)!r} is "
            "not one"
        )


def _resolve(
    name_or_path, cache: Path, progress: bool, splits: tuple | None = None, labels=None
) -> tuple[str, Path]:
    """``(kind, folder)`` of a data set's name, folder or file; `splits` are the files needed
    (default: all of the set's); `labels` label a folder of recordings."""
    _check_name(name_or_path, "load_dataset")
    _check_labels(labels, name_or_path)
    if name_or_path == "synth":
        return "synth", _synth_folder(cache, progress)
    if name_or_path == "speech":
        # Spoken digits from eSpeak NG through the cochlea: made on first use (minutes), cached.
        from .._speech.espeak import SpeechUnavailableError
        from .._speech.speech_shd import ensure_speech_shd

        try:
            return "speech", ensure_speech_shd(cache, progress=progress)
        except SpeechUnavailableError as e:
            raise SpeechUnavailableError(
                f"{e}; or train on another data set: 'synth' (no speech), 'shd' or a folder of "
                "SHD files"
            ) from None
    if name_or_path in FAMILIES:
        family = FAMILIES[name_or_path]
        folder = shd_data_dir(family.name)
        hint = f" (or set $SNNPLAST_DATA to a folder whose {family.name}/ subfolder holds them)"
    else:
        folder = Path(name_or_path).expanduser()
        hint = ""
        if folder.is_file():
            # shd_test.h5 kept anywhere, or a file convert-audio wrote: staged in the cache.
            from .single_file import test_folder, train_folder

            if splits == (TEST,):
                return "file", test_folder(folder, cache, progress)
            return "file", train_folder(folder, cache, progress)
        if not folder.is_dir():
            raise ValidationError(
                f"load_dataset: got {str(name_or_path)!r}, which is neither a known name nor an "
                f"existing folder; allowed: {_allowed()}"
                + did_you_mean(folder.name, DATA_NAMES)
            )
        # A folder of the user's own recordings: converted and split by speaker, once, cached.
        from .._recordings.load import is_recordings_folder
        from .._recordings.split import recordings_data_folder

        if is_recordings_folder(folder):
            folder = recordings_data_folder(
                folder, labels=labels, cache_dir=cache, progress=progress
            )
            return "recordings", folder
        held = [f for f in FAMILIES.values() if present_files(folder, f, f.splits + f.optional)]
        if len(held) > 1:
            # tonic's download root of both sets: which one is meant cannot be guessed.
            inner = [f.folders(folder)[1] for f in held]
            where = (
                f"pass one of {', '.join(repr(str(p)) for p in inner)}"
                if all(present_files(p, f) for p, f in zip(inner, held, strict=True))
                else "put each set in a folder of its own"
            )
            raise ValidationError(
                f"load_dataset: {str(name_or_path)!r} holds the files of "
                f"{' and '.join(f.name.upper() for f in held)}; {where}"
            )
        family = held[0] if held else SHD
    try:
        _family_files(folder, family, hint, cache, progress, splits)
    except SHDMissingError as e:
        if name_or_path in FAMILIES and Path(name_or_path).is_dir():
            # `--data shd` run beside a folder called shd: the name wins, say how to pass it.
            raise SHDMissingError(
                f"{e}; the folder {name_or_path}/ here is not what the name means: pass "
                f"./{name_or_path} to read it"
            ) from None
        raise
    return family.name, folder


def check_data_source(
    name_or_path,
    cache_dir: str | os.PathLike | None = None,
    *,
    progress: bool = False,
    labels: str | os.PathLike | None = None,
) -> None:
    """Check, without generating, reading or binning anything, that `name_or_path` can be loaded
    (by :func:`load_dataset`, to train on).

    ``"synth"`` can always be made; ``"speech"`` needs its cached set or the ``speech`` extra to
    make it; ``"shd"`` and a folder need both files in place, each passing
    :func:`check_shd_file` (a look at the layout, not at the spikes), with the same number of
    channels; one file needs two speakers or more; a folder of recordings (labelled by the CSV
    `labels`, if given) needs a layout that gives every file a label, and two speakers.
    :func:`load_dataset` checks everything else as it reads. Downloaded archives are
    unpacked here (once; `progress` shows a bar: SSC's training archive takes a while).

    **Raises:** `ValueError` (or :class:`SHDMissingError`, a `FileNotFoundError`): one line,
    naming the value or the file and what is allowed.
    """
    _check_name(name_or_path, "data")
    _check_labels(labels, name_or_path)
    if name_or_path == "synth":
        return
    if name_or_path == "speech":
        from .._speech.espeak import SpeechUnavailableError, espeak_paths
        from .._speech.speech_shd import speech_shd_dir

        folder = speech_shd_dir(cache_root(cache_dir))
        if not all((folder / split_filename(t)).is_file() for t in (True, False)):
            try:
                espeak_paths()
            except SpeechUnavailableError as e:
                raise SpeechUnavailableError(
                    f"{e}; or train on another data set: 'synth' (no speech), 'shd' or a folder "
                    "of SHD files"
                ) from None
        return
    from .._recordings.load import is_recordings_folder
    from .._recordings.split import check_recordings_folder

    if is_recordings_folder(name_or_path):
        check_recordings_folder(name_or_path, labels)  # the layout and speakers, not conversion
        return
    if Path(name_or_path).expanduser().is_file():
        from .single_file import check_trainable

        check_trainable(Path(name_or_path).expanduser(), cache_root(cache_dir), progress)
        return
    cache = cache_root(cache_dir)
    kind, folder = _resolve(name_or_path, cache, progress=progress)
    family = _family(kind)
    check_same_channels(_checked_files(folder, family, family.present_splits(folder), cache))


def _family(kind: str) -> Family:
    # The stand-in, the speech set and converted recordings are all written in SHD's layout.
    return FAMILIES.get(kind, SHD)


def _checked_files(folder: Path, family: Family, splits: tuple, cache: Path) -> list[Path]:
    """Each split's file, checked (:func:`check_shd_file`), in the order of `splits`."""
    return [
        check_shd_file(find_split_file(folder, split, cache, family=family)) for split in splits
    ]


def _binning(n_bins, duration, pool, time_axis) -> dict:
    binning = {"n_bins": int(n_bins), "duration": float(duration), "pool": int(pool)}
    # Named only when not the default, so the cache keys of absolute binning stay as they were.
    if check_time_axis(time_axis) != "absolute":
        binning["time_axis"] = time_axis
    return binning


def _binned(folder: Path, train: bool | str, cache: Path, binning: dict, progress: bool) -> dict:
    file = find_split_file(folder, train, cache, progress=progress)
    key = cache_key(version=_BINNED_VERSION, source=file_fingerprint(file), **binning)
    path = cache / "binned" / f"{file.stem}-{key}.npz"
    cached = load_npz(path)
    if cached is not None and {"x", "y", "speakers", "class_names", "n_channels"} <= cached.keys():
        return cached
    header = read_split_header(folder, train, cache_dir=cache, progress=progress)
    n_bins, duration, pool = binning["n_bins"], binning["duration"], binning["pool"]
    try:
        n_out = check_binning(n_bins, duration, header.n_channels, pool)
    except ValueError as e:
        raise ValidationError(f"{file}: {e}") from None
    # Read and bin a chunk of samples at a time: SSC's training file (75k samples) would take
    # gigabytes as event lists, while its binned uint8 frames take 1 GiB at 100 x 140.
    x = np.zeros((len(header.labels), n_bins, n_out), dtype=np.uint8)
    for start, times, units in iter_shd_events(file, progress, f"reading {file.name}"):
        x[start : start + len(times)] = bin_samples(
            times, units, n_bins, duration, header.n_channels, pool,
            time_axis=binning.get("time_axis", "absolute"),
        )  # fmt: skip
    arrays = {
        "x": x,
        "y": header.labels,
        "speakers": header.speakers,
        "class_names": np.array(header.class_names, dtype=str),
        "n_channels": np.array(header.n_channels),
    }
    save_npz_atomic(path, **arrays)
    return arrays


def binned_split(
    folder: str | os.PathLike,
    train: bool | str,
    *,
    n_bins: int = 100,
    duration: float = 1.4,
    pool: int = 5,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    time_axis: str = "absolute",
) -> tuple[Split, tuple[str, ...]]:
    """One file of an SHD-layout folder as a binned split (cached as :func:`load_dataset` does).

    **Arguments:**

    - `folder`: holds ``shd_train.h5`` / ``shd_test.h5`` (directly or in ``SHD/``), or SSC's
      three files (directly or in ``SSC/``).
    - `train`: which file: True the training file, False the test file, or a split's name
      (``"valid"``: SSC's validation file).
    - `n_bins`, `duration`, `pool`, `cache_dir`, `progress`, `time_axis`: as
      :func:`load_dataset`.

    **Returns:** ``(split, class_names)``, every sample of the file.
    """
    check_binning(n_bins, duration, pool, pool)
    folder = Path(folder).expanduser()
    check_shd_file(find_split_file(folder, train, cache_dir, progress=progress))
    binning = _binning(n_bins, duration, pool, time_axis)
    arrays = _binned(folder, train, cache_root(cache_dir), binning, progress)
    split = Split(x=arrays["x"], y=arrays["y"], speakers=arrays["speakers"])
    return split, tuple(str(name) for name in arrays["class_names"])


def _named(name_or_path, kind: str, folder: Path) -> Path:
    # A recordings folder or a single file is named as given, not as what the cache made of it.
    return Path(name_or_path).expanduser() if kind in ("recordings", "file") else folder


def _take(arrays: dict, index: np.ndarray | None) -> Split:
    """The samples `index` of a binned file (all of them, uncopied, for None)."""
    if index is None:
        return Split(x=arrays["x"], y=arrays["y"], speakers=arrays["speakers"])
    return Split(x=arrays["x"][index], y=arrays["y"][index], speakers=arrays["speakers"][index])


def load_dataset(
    name_or_path: str | os.PathLike = DEFAULT_DATA,
    *,
    n_bins: int = 100,
    duration: float = 1.4,
    pool: int = 5,
    val_speakers: float | int = 0.1,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    time_axis: str = "absolute",
    labels: str | os.PathLike | None = None,
) -> SpikeDataset:
    """Load a spiking data set as dense binned arrays, split into train / validation / test.

    The first load reads the files through `tonic.datasets.SHD` (never downloading), bins them
    by absolute time (see :func:`bin_events`) and caches the arrays in
    ``<cache>/binned/`` keyed by the source file's path, size and mtime and the binning
    parameters; later loads read the cache. Validation holds out whole speakers of the training
    file, unless the set has a validation file of its own (SSC's ``ssc_valid.h5``, or an
    ``shd_valid.h5`` beside SHD's two), which is then the validation split; the test split is the
    test file.

    **Arguments:**

    - `name_or_path`: ``"speech"`` (the default: SHD's 20 spoken digits synthesised with eSpeak
      NG and passed through the cochlea, made on first use into ``<cache>/speech_shd/`` in about
      three minutes on 2 cores; needs the ``speech`` extra), ``"synth"`` (a procedural stand-in
      without speech, generated in seconds into ``<cache>/synth/``: 2000 training / 500 test
      samples, 20 classes), ``"shd"`` (the real SHD files in
      ``$SNNPLAST_DATA/shd``, default ``~/.cache/snnplast/shd``), ``"ssc"`` (the Spiking Speech
      Commands' three files in ``$SNNPLAST_DATA/ssc``: 35 classes, the authors' validation
      file as the validation split), a folder holding ``shd_train.h5`` and ``shd_test.h5``
      (directly or in its ``SHD/`` subfolder; their downloaded ``.zip``/``.gz`` archives do
      too) or SSC's ``ssc_train.h5``, ``ssc_valid.h5`` and ``ssc_test.h5`` (directly or in
      ``SSC/``, or their archives), one SHD-layout file (SHD's, SSC's or one ``convert_audio``
      wrote, or its ``.h5.zip``/``.h5.gz`` download: a fifth of its speakers held out as the
      test split; a file whose set lies complete beside it is refused, pass the folder), or a
      folder of labelled recordings (any layout ``convert_audio`` reads: converted once through
      the cochlea, the recordings of a fifth of the speakers held out as the test split; see
      :func:`~snnplast.data._recordings.split.recordings_data_folder`).
    - `n_bins`: time bins ``T`` over ``[0, duration)``.
    - `duration`: seconds covered; later spikes are dropped.
    - `pool`: adjacent channels summed into one (700 / pool channels; must divide 700).
    - `val_speakers`: speakers held out for validation, as a fraction in [0, 1) of the training
      speakers (at least one when positive) or as a count; unused where the set has a
      validation file.
    - `seed`: picks the validation speakers.
    - `cache_dir`: cache root (default ``$SNNPLAST_CACHE`` or ``~/.cache/snnplast``).
    - `progress`: show progress bars while reading, generating and binning.
    - `time_axis`: what the bins span: ``"absolute"``, ``[0, duration)`` of every sample, or
      ``"word"``, each sample's word found from its spike rate, stretched over the bins with a
      margin (see :func:`snnplast.data.word_span`).
    - `labels`: a CSV ``file,label[,speaker]`` labelling a folder of recordings (as
      :func:`convert_audio` reads it); None reads labels from the folder's layout.

    **Returns:** a :class:`SpikeDataset`.

    **Raises:** `ValueError` for an unknown name or bad parameters; :class:`SHDMissingError`
    saying where to put missing files; :class:`SHDFormatError` naming a damaged file.
    """
    cache = cache_root(cache_dir)
    # Check the cheap things first, so a typo fails before minutes of reading.
    # Signs and types only (pool against itself): whether pool divides the channels is checked
    # once the files' channel count is known, still before anything is read.
    check_binning(n_bins, duration, pool, pool)
    check_time_axis(time_axis)
    n_val_speakers(val_speakers, 1 << 30)
    kind, folder = _resolve(name_or_path, cache, progress, labels=labels)
    family = _family(kind)
    splits = family.present_splits(folder)
    files = _checked_files(folder, family, splits, cache)
    n_channels = check_same_channels(files)
    try:
        check_binning(n_bins, duration, n_channels, pool)
    except ValueError as e:
        raise ValidationError(f"{files[0]}: {e}") from None
    binning = _binning(n_bins, duration, pool, time_axis)
    arrays = {split: _binned(folder, split, cache, binning, progress) for split in splits}
    class_names = tuple(str(name) for name in arrays[TRAIN]["class_names"])
    for split, file in zip(splits, files, strict=True):
        names = tuple(str(name) for name in arrays[split]["class_names"])
        if names != class_names:
            raise SHDFormatError(
                f"{folder}: {files[0].name} and {file.name} name different classes "
                f"({len(class_names)} vs {len(names)} keys); they must share extra/keys"
            )
    if VALID in arrays:
        # The authors split the speakers (SSC, or a Speech Commands folder's own lists): their
        # validation file is the validation split.
        train, val = _take(arrays[TRAIN], None), _take(arrays[VALID], None)
    else:
        train_index, val_index = split_by_speaker(arrays[TRAIN]["speakers"], val_speakers, seed)
        train, val = _take(arrays[TRAIN], train_index), _take(arrays[TRAIN], val_index)
    named = _named(name_or_path, kind, folder)
    return SpikeDataset(
        train=train,
        val=val,
        test=_take(arrays[TEST], None),
        n_classes=len(class_names),
        n_channels=n_channels // pool,
        n_bins=n_bins,
        class_names=class_names,
        source=f"{kind}:{named.resolve()}",
    )


def load_test_split(
    name_or_path: str | os.PathLike = DEFAULT_DATA,
    *,
    n_bins: int = 100,
    duration: float = 1.4,
    pool: int = 5,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    time_axis: str = "absolute",
) -> tuple[Split, tuple[str, ...], str]:
    """Only the test split of a data set :func:`load_dataset` knows, binned and cached as it
    bins it, without reading the training file (SSC's is 75k samples; scoring a trained model
    needs none of them). One SHD-layout file (``shd_test.h5`` kept anywhere, SSC's, or one
    ``convert_audio`` wrote) is a test split whole.

    **Arguments:** as :func:`load_dataset`.

    **Returns:** ``(split, class_names, source)``, `source` as :attr:`SpikeDataset.source`.

    **Raises:** as :func:`load_dataset`.
    """
    cache = cache_root(cache_dir)
    check_binning(n_bins, duration, pool, pool)
    check_time_axis(time_axis)
    kind, folder = _resolve(name_or_path, cache, progress, splits=(TEST,))
    family = _family(kind)
    (file,) = _checked_files(folder, family, (TEST,), cache)
    try:
        check_binning(n_bins, duration, check_same_channels([file]), pool)
    except ValueError as e:
        raise ValidationError(f"{file}: {e}") from None
    arrays = _binned(folder, TEST, cache, _binning(n_bins, duration, pool, time_axis), progress)
    named = _named(name_or_path, kind, folder)
    names = tuple(str(name) for name in arrays["class_names"])
    return _take(arrays, None), names, f"{kind}:{named.resolve()}"
