"""Your own recordings, end to end: a folder of WAV files -> spikes through the cochlea
(``snnplast data convert-audio``) -> a train / test split by speaker -> a trained network.

The folder may be laid out as ``convert-audio`` reads it: labelled names
(``7_speaker_12.wav``, or the Free Spoken Digit Dataset's ``7_jackson_32.wav``), one folder per
label (``yes/0a7c2a8d_nohash_0.wav``, as in Speech Commands), or any names with
``--labels labels.csv`` (``file,label[,speaker]``). Whole speakers are held out for the test
set (and for validation), so the accuracy is on voices the network never heard. The same in
one command, without a labels CSV: ``snnplast train --data ~/recordings`` (a fifth of the
speakers held out for the test split).

    python examples/own_recordings.py ~/recordings --out runs/mine
    python examples/own_recordings.py --demo 8 --out runs/demo   # eSpeak NG digits, 8 voices

``--demo N`` first writes N synthetic speakers saying "zero".."nine" (FSDD names; needs the
speech extra) into OUT/wav and uses that folder. About 1 minute on 2 CPU cores for
``--demo 8`` (80 recordings, 20 epochs; measured: 64 s of CPU time, 35% test accuracy on the
two held-out voices, chance 10%); for a folder of your own, add the cochlea's time (about 0.1 s
per recording, README) and training's, which grows with the number of recordings.
"""

from __future__ import annotations

import argparse
import re
import wave
from pathlib import Path

import numpy as np

from snnplast.data import convert_audio, hold_out_speakers, load_dataset
from snnplast.train import TrainConfig, fit


def make_demo(folder: Path, n_speakers: int, seed: int) -> Path:
    """`n_speakers` eSpeak NG voices saying the English digits, as FSDD-named WAV files."""
    from snnplast.data import speech

    train, test = speech.plan_corpus(n_speakers - 1, 1, seed=seed)
    plan = [u for u in train + test if u.label < 10]  # English digits only, as in FSDD
    clips, rate = speech.synthesize(plan, progress="eSpeak NG")
    folder.mkdir(parents=True, exist_ok=True)
    for u, clip in zip(plan, clips, strict=True):
        name = re.sub(r"[^A-Za-z0-9]", "", u.speaker.variant) + str(u.speaker.id)
        with wave.open(str(folder / f"{u.label}_{name}_0.wav"), "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(rate)
            f.writeframes(np.asarray(clip, "<i2").tobytes())
    return folder


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("in_dir", type=Path, nargs="?", help="your folder of WAV files")
    p.add_argument("--labels", type=Path, default=None, help="CSV file,label[,speaker]")
    p.add_argument(
        "--demo",
        type=int,
        default=None,
        metavar="N",
        help="make N synthetic speakers' digits instead (needs the speech extra)",
    )
    p.add_argument("--out", type=Path, default=Path("runs/own-recordings"))
    p.add_argument("--test-speakers", type=float, default=0.2, help="share of speakers held out")
    p.add_argument("--model", default="rlif")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--method", default="bptt")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if (args.in_dir is None) == (args.demo is None):
        p.error("give a folder of WAV files or --demo N, one of the two")

    args.out.mkdir(parents=True, exist_ok=True)
    in_dir = args.in_dir or make_demo(args.out / "wav", args.demo, args.seed)
    converted = args.out / "recordings.h5"
    print(f"snnplast data convert-audio {in_dir} --out {converted}")
    convert_audio(in_dir, converted, labels=args.labels, seed=args.seed)
    data_dir = args.out / "data"
    data_dir.mkdir(exist_ok=True)
    test_speakers = hold_out_speakers(converted, data_dir, args.test_speakers, args.seed)
    print(f"test speakers (never trained on): {', '.join(test_speakers)}")

    dataset = load_dataset(data_dir, cache_dir=args.out / "cache")
    config = TrainConfig(
        model=args.model, hidden=args.hidden, method=args.method, epochs=args.epochs,
        batch=args.batch, seed=args.seed, data=str(data_dir),
    )  # fmt: skip
    summary = fit(config, dataset, args.out / "run")
    print(
        f"{dataset.n_classes} classes, {len(dataset.train.y)} train / {len(dataset.val.y)} val / "
        f"{len(dataset.test.y)} test recordings: test accuracy {summary['test_accuracy']:.1%}"
    )
    print(f"curves: snnplast plot {args.out / 'run'} --out curves.png")
    return summary


if __name__ == "__main__":
    main()
