"""``snnplast data``: make spiking data sets from speech, and look at them.

- ``synth-shd --out DIR``: a synthetic SHD (eSpeak NG digits through the Lauscher cochlea);
- ``convert-audio IN_DIR --out FILE.h5``: the user's own labelled recordings, same cochlea;
- ``show FILE --index i --out x.png``: one sample's spike raster (and waveform, when kept),
  or one recording's through the cochlea.
"""

from __future__ import annotations

import argparse

from .._errors import ValidationError
from ._paths import user_path


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a positive integer, got 0")
    return value


def _synth_shd(args) -> int:
    from ..data import make_speech_shd

    out = make_speech_shd(
        args.out, per_class=args.per_class, seed=args.seed, noise_snr=args.noise_snr,
        workers=args.workers, progress=not args.quiet,
    )  # fmt: skip
    print(f"wrote {out / 'shd_train.h5'} and {out / 'shd_test.h5'}")
    return 0


def _mapping(ids: list[int], names: list[str], limit: int = 30) -> str:
    """``0=alice 1=bob ...``, cut after `limit` entries (the file holds them all)."""
    pairs = [f"{i}={names[i]}" for i in ids]
    more = f" ... ({len(pairs)} in all)" if len(pairs) > limit else ""
    return " ".join(pairs[:limit]) + more


def _convert_audio(args) -> int:
    import h5py
    import numpy as np

    from ..data import SPEAKER_NAMES, convert_audio, read_names
    from ..data._recordings.convert import read_skipped

    out = convert_audio(
        args.in_dir, args.out, labels=args.labels, seed=args.seed,
        exact_length=args.exact_length, workers=args.workers, progress=not args.quiet,
    )  # fmt: skip
    # Printed from the file just written, so what is shown is what is stored.
    classes, speakers = read_names(out)
    with h5py.File(out, "r") as f:
        labels, speaker_ids = f["labels"][()], f["extra/speaker"][()]
    used_classes = [int(i) for i in np.unique(labels)]
    used_speakers = [int(i) for i in np.unique(speaker_ids)]
    print(
        f"wrote {out}: {len(labels)} recordings, {len(used_classes)} of {len(classes)} classes, "
        f"{len(used_speakers)} speakers"
    )
    print(f"classes (extra/keys): {_mapping(used_classes, classes)}")
    print(f"speakers ({SPEAKER_NAMES}): {_mapping(used_speakers, speakers)}")
    skipped = read_skipped(out)
    if skipped:
        print(f"skipped {len(skipped)} recording{'s' * (len(skipped) > 1)} (named above; the "
              "file lists them in extra/skipped)")  # fmt: skip
    return 0


def _show(args) -> int:
    from ..data import is_audio, plot_recording, plot_sample

    if is_audio(args.file):
        if args.index != 0:
            raise ValidationError(f"--index {args.index}: an audio file holds one recording")
        out = plot_recording(args.file, args.out, audio=not args.no_audio)
    else:
        out = plot_sample(args.file, args.index, args.out, audio=not args.no_audio)
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    from ..data import DEFAULT_SPEECH_PER_CLASS as DEFAULT_PER_CLASS

    data = subparsers.add_parser(
        "data",
        help="make spiking data sets from speech (synthetic SHD, your recordings) and plot them",
        description=__doc__.split("\n\n")[0],
    )
    commands = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    synth = commands.add_parser(
        "synth-shd",
        help="synthesise spoken digits and write shd_train.h5 / shd_test.h5",
        description=(
            "Speak SHD's 20 words (English and German digits) with eSpeak NG voices, pass them "
            "through the Lauscher cochlea and write shd_train.h5 / shd_test.h5 in SHD's layout; "
            "test speakers are held out (they use voices no training speaker uses). Reuses DIR "
            "if it already holds a set made with the same options. Needs the speech extra: "
            "pip install 'snnplast[speech]'."
        ),
    )
    synth.add_argument("--out", required=True, type=user_path, metavar="DIR", help="output folder")
    synth.add_argument(
        "--per-class", type=_positive, default=DEFAULT_PER_CLASS, metavar="N",
        help=f"training utterances per class, one per training speaker (default {DEFAULT_PER_CLASS},"
        " the size snnplast train uses; the test split gets N/8 held-out speakers)",
    )  # fmt: skip
    synth.add_argument("--seed", type=_non_negative, default=0, metavar="S", help="default 0")
    synth.add_argument(
        "--noise-snr", type=float, default=None, metavar="DB",
        help="add white noise at this signal-to-noise ratio in dB (default: none)",
    )  # fmt: skip
    synth.add_argument("--workers", type=_positive, default=None, metavar="W",
                       help="cochlea processes (default: one per CPU core)")  # fmt: skip
    synth.add_argument("--quiet", action="store_true", help="no progress bars")
    synth.set_defaults(func=_synth_shd)

    convert = commands.add_parser(
        "convert-audio",
        help="convert a folder of labelled recordings (WAV, FLAC, ...) to one SHD-layout file",
        description=(
            "Convert recordings (WAV, FLAC, Ogg, MP3, AIFF; any sample rate; several channels are "
            "mixed down) to spikes with the Lauscher cochlea and write one .h5 file in "
            "SHD's layout. Labels and speakers come from the folder's layout: file names "
            "LABEL_speaker_ID.wav (7_speaker_12.wav) or LABEL_SPEAKER_INDEX.wav (the Free Spoken "
            "Digit Dataset's 7_jackson_32.wav); or one folder per label (yes/0a7c2a8d_nohash_0.wav, "
            "as in Speech Commands; the speaker is read from names SPEAKER_nohash_N, "
            "LABEL_speaker_ID or LABEL_SPEAKER_INDEX, else unknown; folders starting with _ are "
            "skipped); or from --labels CSV (header file,label[,speaker]). Labels that are SHD "
            "classes (0-19, or names like seven / sieben) keep SHD's class list; other labels "
            "become classes in sorted order. Speaker names get integer ids; the file keeps the "
            "name of each id in extra/speaker_names, and both mappings are printed. A recording "
            "that cannot be used (an empty file, one that does not decode, one without sound or "
            "under 10 ms) is left out with a one-line warning naming it and why, and listed in "
            "extra/skipped; only a folder where nothing is left is an error."
        ),
    )
    convert.add_argument("in_dir", type=user_path, metavar="IN_DIR",
                         help="folder of audio files, or of one folder of them per label")  # fmt: skip
    convert.add_argument("--out", required=True, type=user_path, metavar="FILE.h5",
                         help="output file")  # fmt: skip
    convert.add_argument("--labels", type=user_path, default=None, metavar="CSV",
                         help="CSV with columns file,label[,speaker]")  # fmt: skip
    convert.add_argument("--seed", type=_non_negative, default=0, metavar="S", help="default 0")
    convert.add_argument(
        "--exact-length", action="store_true",
        help="run each file at its own length, exactly as Lauscher (slower: seconds per new length)",
    )  # fmt: skip
    convert.add_argument("--workers", type=_positive, default=None, metavar="W",
                         help="cochlea processes (default: one per CPU core)")  # fmt: skip
    convert.add_argument("--quiet", action="store_true", help="no progress bars")
    convert.set_defaults(func=_convert_audio)

    show = commands.add_parser(
        "show",
        help="plot one sample: spike raster (channel x time), waveform above when kept",
        description="Plot one sample of an SHD-layout file as a raster of channel over time, with "
        "its waveform above when the audio was kept beside the file; or one recording (WAV, "
        "FLAC, ...) through the cochlea, its waveform above.",
    )
    show.add_argument("file", type=user_path, metavar="FILE",
                      help="an SHD-layout .h5 file, or an audio file")  # fmt: skip
    show.add_argument("--index", type=_non_negative, default=0, metavar="I", help="default 0")
    show.add_argument("--out", required=True, type=user_path, metavar="IMAGE",
                      help="image to write (.png, .pdf, .svg, .jpg)")  # fmt: skip
    show.add_argument("--no-audio", action="store_true", help="leave out the waveform")
    show.set_defaults(func=_show)
