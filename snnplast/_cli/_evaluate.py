"""``snnplast evaluate``: a trained run's model on another data set or on your own recordings."""

from __future__ import annotations

import argparse
import json

from ._paths import user_path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="test a trained run on another data set or a folder of recordings",
        description="Evaluate the model of RUN_DIR (a folder written by snnplast train) on the "
        "test split of a data set, on one SHD-layout .h5 file or its .h5.zip/.h5.gz download "
        "(all of it: shd_test.h5 kept anywhere, SSC's, or a file convert-audio wrote), or on a "
        "folder of recordings (WAV, FLAC, ...) at any sample rate (converted through the same "
        "cochlea on first use, then cached; labelled as 'snnplast data convert-audio' reads "
        "them, e.g. 7_speaker_12.wav or 7_jackson_32.wav, or by --labels; a folder with Speech "
        "Commands' testing_list.txt is scored on the recordings it lists, or on all of them "
        "with --all-recordings; recordings that cannot be read are left out with a warning, "
        "and a later run that reuses the cached conversion says how many in one line). Prints "
        "which samples were scored and accuracy overall, per class and per speaker; writes "
        "evaluation.json and confusion.png.",
    )
    p.add_argument("run_dir", type=user_path, metavar="RUN_DIR", help="a training run's folder")
    p.add_argument(
        "--data", required=True, metavar="DATA",
        help="'speech', 'synth', 'shd', 'ssc', a folder of SHD or SSC files, one such .h5 "
        "file, or a folder of recordings",
    )  # fmt: skip
    p.add_argument("--labels", type=user_path, default=None, metavar="CSV",
                   help="labels of a recordings folder: CSV with columns file,label[,speaker]")  # fmt: skip
    p.add_argument("--out", type=user_path, default=None, metavar="DIR",
                   help="where to write the files (default RUN_DIR/evaluate-<data name>)")  # fmt: skip
    p.add_argument(
        "--all-recordings", action="store_true",
        help="score every recording of a folder of recordings, not only those its "
        "testing_list.txt names (Speech Commands' test split: training on the folder holds "
        "those out and trains on the rest, so a run trained on it has seen the others)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train import evaluate

    result = evaluate(args.run_dir, args.data, labels=args.labels, out=args.out,
                      progress=not args.no_progress,
                      all_recordings=args.all_recordings)  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.run_dir} on {args.data}: {result['n']} samples")
    print(f"  scored: {result['scored']}")
    print(f"  accuracy            {100 * result['accuracy']:.1f}%")
    print(f"  within its classes  {100 * result['accuracy_present_classes']:.1f}%")
    for title, table in (
        ("per speaker", result["per_speaker"]),
        ("per class", result["per_class"]),
    ):
        print(f"  {title}:")
        for name, row in table.items():
            print(f"    {name:<12} {100 * row['accuracy']:5.1f}%  (n = {row['n']})")
    print(f"files in {result['out']}/: {', '.join(result['files'])}")
    return 0
