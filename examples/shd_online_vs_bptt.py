"""Online learning against BPTT on spoken digits in SHD's layout: the same network, seed, data
and budget trained by BPTT, by e-prop (``Diagonal``) and by the d = 0 rule (``Immediate``),
with their accuracy, time, memory and gradient agreement side by side and in a figure.

The data come from a folder holding ``shd_train.h5`` and ``shd_test.h5``: the real Spiking
Heidelberg Digits when you have them (``--data /path/to/shd`` or ``--data shd``, see the
README), otherwise the default spoken digits snnplast makes on first use.

    python examples/shd_online_vs_bptt.py --out runs/online-vs-bptt
    python examples/shd_online_vs_bptt.py --data ~/data/shd --epochs 30

About 2-3 minutes on 2 CPU cores with the defaults (recurrent LIF, 128 neurons, 10 epochs per
method; measured on the stand-in, which has the spoken digits' size: 104 s of CPU time), plus
about 2.5 minutes the first time while the spoken digits are made; the real SHD is 4.5 times
larger. Writes compare.md, compare.json, compare.png and curves.png (made by the same code as
``snnplast plot``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from snnplast.data import load_dataset, shd_data_dir
from snnplast.train import TrainConfig, compare, plot_runs


def default_data() -> str:
    """Real SHD where it is installed, else the spoken digits snnplast makes."""
    folder = shd_data_dir()
    has_shd = all((folder / f"shd_{split}.h5").is_file() for split in ("train", "test"))
    return "shd" if has_shd else "speech"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None,
                   help="a folder of SHD files, shd, speech or synth (default: shd if installed, "
                   "else speech)")  # fmt: skip
    p.add_argument("--methods", default="bptt,diagonal,immediate")
    p.add_argument("--model", default="rlif")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--bins", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/online-vs-bptt"))
    args = p.parse_args(argv)

    data_name = args.data or default_data()
    print(f"data: {data_name}")
    dataset = load_dataset(data_name, n_bins=args.bins)
    config = TrainConfig(
        model=args.model, hidden=args.hidden, method="diagonal", epochs=args.epochs,
        batch=args.batch, seed=args.seed, data=str(data_name), n_bins=args.bins,
    )  # fmt: skip
    report = compare(args.methods, config, dataset, args.out)
    print((args.out / "compare.md").read_text().split("\n\n- ")[0])
    curves = plot_runs([args.out], args.out / "curves.png")
    print(f"figures: {args.out / 'compare.png'}, {curves}")
    return report


if __name__ == "__main__":
    main()
