"""A stand-in for the cochlea's conversion of a folder, for tests of how recordings are split:
recording i becomes one spike on channel i, so every split's samples trace back to their
recordings (bin with pool=1)."""

import h5py
import numpy as np

from snnplast.data import write_shd_h5
from snnplast.data._recordings.convert import SPEAKER_NAMES, _classes
from snnplast.data._recordings.layouts import speaker_ids


def fake_conversion(in_dir, recordings, **_):
    """What ``snnplast.data._recordings.split.converted`` returns, made without the cochlea:
    ``in_dir/../converted/shd_test.h5``."""
    out = in_dir.parent / "converted" / "shd_test.h5"
    out.parent.mkdir(exist_ok=True)
    classes, keys = _classes([r.label for r in recordings])
    speakers, names = speaker_ids([r.speaker for r in recordings])
    times = [np.array([0.1]) for _ in recordings]
    units = [np.array([i]) for i in range(len(recordings))]
    write_shd_h5(out, times, units, classes, speakers, keys)
    with h5py.File(out, "a") as f:
        f.create_dataset(SPEAKER_NAMES, data=np.array([n.encode() for n in names]))
    return out
