"""Where a folder of recordings keeps its labels and speakers: the layouts ``convert-audio`` reads.

- **Names** (a flat folder): ``LABEL_speaker_ID.wav`` (``7_speaker_12.wav``; anything after a
  further ``_`` is ignored) or ``LABEL_SPEAKER_INDEX.wav``, the Free Spoken Digit Dataset's
  ``DIGIT_SPEAKERNAME_INDEX.wav`` (``7_jackson_32.wav``). Text beside them (``README.md``,
  ``LICENSE``, ``.txt``, ``.csv``, ``.json`` files) is left out; any other file is an error.
- **One folder per label** (``yes/0a7c2a8d_nohash_0.wav``, as in Speech Commands): the label is
  the folder's name; the speaker comes from the file name where it carries one
  (``SPEAKER_nohash_N``, ``LABEL_speaker_ID``, ``LABEL_SPEAKER_INDEX``), otherwise it is unknown.
  Folders whose names start with ``_`` or ``.`` (``_background_noise_``) and files beside the
  label folders (``README.md``, ``testing_list.txt``) are left out.
- **One folder per speaker** (AudioMNIST's ``01/0_01_0.wav``): every file is named
  ``LABEL_SPEAKER_INDEX`` with its folder's name as ``SPEAKER``; the label comes from the name.
- **Labelled names in one sub-folder** (the Free Spoken Digit Dataset's repository, whose
  recordings lie in ``recordings/``): a single folder of audio whose files are all named with
  labels, two labels or more, is read as labelled names; the folder is not a label.

Hidden files (``.DS_Store``, macOS's ``._x.wav`` AppleDouble files, which are not audio) are
left out everywhere. A folder that only wraps one of these layouts (AudioMNIST's repository,
``data/01/0_01_0.wav``) is read through. Recordings two or three folders deep in several folders
(``speaker/label/x.wav``, ``speaker/session/label/x.wav``) are refused with a one-line error:
which level is the label cannot be told from the folders; a CSV says it.
- **A CSV** with the header ``file,label[,speaker]``, ``file`` relative to the folder.

The files may be in any format :func:`~snnplast.data.read_audio` reads (WAV, FLAC, Ogg, MP3,
AIFF, ...; ``.wav`` in the names above stands for any of them), with any number of channels.

Speakers are names of any kind; :func:`speaker_ids` turns them into the integer ids of the SHD
layout.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..._errors import ValidationError
from .._audio.formats import check_audio, is_audio

# The speaker of a recording whose layout names none. All such recordings count as one speaker.
UNKNOWN_SPEAKER = "unknown"
_MAX_ID = 65535  # speaker ids are stored as uint16


@dataclass(frozen=True)
class Recording:
    """One labelled recording.

    **Fields:** `path`; `name`, its path relative to the input folder (``yes/a.wav``), which
    seeds its cochlea; `label` (text: a class index or name); `speaker` (text: an id or a name).
    """

    path: Path
    name: str
    label: str
    speaker: str


# Names that carry both label and speaker, tried in this order (the first match wins):
# ``7_speaker_12`` would also read as LABEL_SPEAKER_INDEX with a speaker called "speaker".
_LABELLED_NAMES = (
    re.compile(r"^(?P<label>[^_]+)_speaker_(?P<speaker>[^_]+)(?:_.*)?$", re.IGNORECASE),
    re.compile(r"^(?P<label>[^_]+)_(?P<speaker>[^_]+)_\d+$"),
)
# Names inside a label folder that carry the speaker; ``SPEAKER_nohash_N`` is Speech Commands'.
_SPEAKER_NAMES = (
    re.compile(r"^(?P<speaker>[^_]+)_nohash_\d+$", re.IGNORECASE),
    *_LABELLED_NAMES,
)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _audio_files(folder: Path) -> list[Path]:
    """The files of `folder` (not its sub-folders), each checked to be an audio file."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and _visible(p))
    for path in files:
        check_audio(path)
    return files


def _label_folders(in_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in in_dir.iterdir()
        if p.is_dir() and _visible(p) and not p.name.startswith("_")
        and any(is_audio(f) and _visible(f) for f in p.iterdir())
    )  # fmt: skip


# Text a folder of recordings carries beside them (a data set's README, licence, lists).
_TEXT_SUFFIXES = frozenset({".csv", ".json", ".md", ".rst", ".txt"})
_TEXT_STEMS = frozenset({"license", "licence", "readme", "copying", "authors"})


def _is_text(path: Path) -> bool:
    return path.suffix.lower() in _TEXT_SUFFIXES or path.stem.lower() in _TEXT_STEMS


def from_names(in_dir: Path, folder: Path | None = None) -> list[Recording]:
    """A flat folder whose file names carry label and speaker (text beside them is skipped).

    `folder` is where the files are, when not `in_dir` itself (names stay relative to `in_dir`).
    """
    folder = in_dir if folder is None else folder
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and _visible(p)]
    found = []
    for path in files:
        if _is_text(path):
            continue
        check_audio(path)
        match = next((m for p in _LABELLED_NAMES if (m := p.match(path.stem))), None)
        if match is None:
            raise ValidationError(
                f"{path}: no label; name it LABEL_speaker_ID.wav (7_speaker_12.wav) or "
                "LABEL_SPEAKER_INDEX.wav (7_jackson_0.wav), put it in a folder named after its "
                "label, or list it in a CSV given with --labels"
            )
        name = path.relative_to(in_dir).as_posix()
        found.append(Recording(path, name, match["label"], match["speaker"]))
    return found


def _labelled(path: Path) -> re.Match | None:
    """`path`'s name read as LABEL_speaker_ID / LABEL_SPEAKER_INDEX, unless it is Speech
    Commands' SPEAKER_nohash_N (which the second form would misread as label SPEAKER)."""
    if _SPEAKER_NAMES[0].match(path.stem):
        return None
    return next((m for p in _LABELLED_NAMES if (m := p.match(path.stem))), None)


def _named_in_folders(folders: list[Path]) -> dict[Path, list[tuple[Path, re.Match]]] | None:
    """Every audio file of `folders` with its name read as a label, or None if any name has none."""
    named = {}
    for folder in folders:
        files = [p for p in sorted(folder.iterdir()) if p.is_file() and _visible(p)]
        matches = [(p, _labelled(p)) for p in files if not _is_text(p)]
        if not matches or any(m is None for _, m in matches):
            return None
        named[folder] = matches
    return named


def from_speaker_folders(in_dir: Path, named: dict) -> list[Recording]:
    """One folder per speaker (AudioMNIST): the label from each name, the speaker the folder."""
    found = []
    for folder, matches in named.items():
        for path, match in matches:
            check_audio(path)
            name = path.relative_to(in_dir).as_posix()
            found.append(Recording(path, name, match["label"], folder.name))
    return found


def _is_speaker_folders(named: dict) -> bool:
    return all(
        m["speaker"].lower() == folder.name.lower() for folder, ms in named.items() for _, m in ms
    )


def _is_one_named_folder(named: dict) -> bool:
    # A single label folder cannot make a data set to train on; names carrying two labels or
    # more say the folder only holds them (FSDD's recordings/).
    labels = {m["label"] for ms in named.values() for _, m in ms}
    return len(named) == 1 and len(labels) >= 2


# Where recordings below the folders a layout reads are looked for: two and three folders down
# (speaker/label/x.wav, speaker/session/label/x.wav).
NESTED = ("*/*/*", "*/*/*/*")
_DEPTHS = {2: "two", 3: "three"}


def _deeper_audio(in_dir: Path) -> Path | None:
    for pattern in NESTED:
        found = next((p for p in sorted(in_dir.glob(pattern)) if _visible(p) and is_audio(p)), None)
        if found is not None:
            return found
    return None


def from_folders(in_dir: Path, folders: list[Path]) -> list[Recording]:
    """One folder per label; the speaker from each file name where it has one."""
    found = []
    for folder in folders:
        for path in _audio_files(folder):
            match = next((m for p in _SPEAKER_NAMES if (m := p.match(path.stem))), None)
            speaker = UNKNOWN_SPEAKER if match is None else match["speaker"]
            name = path.relative_to(in_dir).as_posix()
            found.append(Recording(path, name, folder.name, speaker))
    return found


def from_csv(in_dir: Path, table: Path) -> list[Recording]:
    """The rows of `table` (``file,label[,speaker]``); every audio file of `in_dir` is listed."""
    if not table.is_file():
        raise FileNotFoundError(f"{table}: no such labels file")
    with open(table, newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip().lower() for c in (reader.fieldnames or [])]
        if "file" not in columns or "label" not in columns:
            raise ValidationError(
                f"{table}: needs a header with columns file,label[,speaker]; got {columns}"
            )
        rows = [
            {k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader
        ]
    listed = {}
    for line, row in enumerate(rows, start=2):
        if Path(row["file"]).name.startswith("."):
            continue  # a hidden file (macOS's ._x.wav) listed by a glob: not a recording
        path = in_dir / row["file"]
        if not row["label"]:
            raise ValidationError(f"{path}: no label ({table.name}, line {line})")
        check_audio(path)
        name = Path(row["file"]).as_posix()
        listed[name] = Recording(path, name, row["label"], row.get("speaker") or UNKNOWN_SPEAKER)
    for path in sorted(in_dir.glob("*")):
        if is_audio(path) and _visible(path) and path.name not in listed:
            raise ValidationError(f"{path}: no label; add a row for it to {table}")
    return [listed[name] for name in sorted(listed)]


def find_layout(in_dir: Path) -> list[Recording]:
    """The recordings of `in_dir` in whichever layout it has: label folders, speaker folders,
    labelled names (directly or in one sub-folder)."""
    folders = _label_folders(in_dir)
    if not folders:
        deeper = _deeper_audio(in_dir)
        loose = [p for p in in_dir.iterdir() if p.is_file() and _visible(p) and not _is_text(p)]
        wrappers = [
            p for p in sorted(in_dir.iterdir())
            if p.is_dir() and _visible(p) and not p.name.startswith("_")
            and any(_visible(f) and is_audio(f) for d in NESTED for f in p.glob(d[2:]))
        ]  # fmt: skip
        loose_audio = [p for p in loose if is_audio(p)]
        if deeper is not None and not loose_audio and len(wrappers) == 1:
            # Scripts and notes beside it are a repository's, not recordings.
            # A folder that only wraps the data set (AudioMNIST's repository: data/01/0_01_0.wav).
            inner = wrappers[0]
            return [replace(r, name=f"{inner.name}/{r.name}") for r in find_layout(inner)]
        if deeper is not None and not loose_audio:
            where = deeper.parent.relative_to(in_dir)
            raise ValidationError(
                f"{deeper}: recordings lie {_DEPTHS[len(where.parts)]} folders deep "
                f"({where.as_posix()}/); use one folder per label or labelled file names, or "
                "list them in a CSV (file,label,speaker) given with --labels "
                "(convert-audio, evaluate and train take it)"
            )
        return from_names(in_dir)
    loose = sorted(p for p in in_dir.glob("*") if p.is_file() and _visible(p) and is_audio(p))
    if loose:
        raise ValidationError(
            f"{loose[0]}: lies beside label folders ({folders[0].name}/ ...); use one layout, "
            "one folder per label or labelled file names, not both"
        )
    named = _named_in_folders(folders)
    if named is not None and _is_speaker_folders(named):
        return from_speaker_folders(in_dir, named)
    if named is not None and _is_one_named_folder(named):
        return from_names(in_dir, folders[0])
    return from_folders(in_dir, folders)


def _is_id(name: str) -> bool:
    return name.isdigit() and str(int(name)) == name and int(name) <= _MAX_ID


def speaker_ids(names: list[str]) -> tuple[list[int], list[str]]:
    """Integer ids for speaker names, and the name of each id.

    Names that are all plain integers (``12``) keep them as ids, so numbered speakers stay as
    numbered; otherwise the distinct names, sorted, get ids 0, 1, ...

    **Arguments:**

    - `names`: one speaker name per recording.

    **Returns:** ``(ids, table)``: one id per name, and ``table[id]`` the speaker's name (ids no
    recording uses, possible with numbered speakers, name ``""``).
    """
    if names and all(_is_id(name) for name in names):
        ids = [int(name) for name in names]
        table = [""] * (max(ids) + 1)
        for i, name in zip(ids, names):
            table[i] = name
        return ids, table
    table = sorted(set(names))
    if len(table) > _MAX_ID + 1:
        raise ValidationError(f"{len(table)} speakers; the SHD layout stores at most {_MAX_ID + 1}")
    index = {name: i for i, name in enumerate(table)}
    return [index[name] for name in names], table
