"""Stand-ins for the cochlea, for tests of what happens around it: :func:`fake_conversion`
for the conversion of a folder, in tests of how recordings are split (recording i becomes one
spike on channel i, so every split's samples trace back to their recordings; bin with
pool=1), and :func:`one_spike_cochlea` for ``cochlea_batch`` itself, in tests of which
recordings are converted and what is said about them."""

import h5py
import numpy as np

from snnplast.data import Spikes, write_shd_h5
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


def one_spike_cochlea(clips, rate, **_):
    """What ``cochlea_batch`` returns, in no time: one spike on channel 0 mid-clip."""
    return [Spikes(np.array([clip.size / rate / 2]), np.zeros(1, np.uint16)) for clip in clips]
