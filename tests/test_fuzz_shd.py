"""Fuzzing the SHD loader: a few hundred randomly damaged files, each either loaded correctly or
refused with one clear line naming the file; never a raw error from inside h5py or NumPy, never
a crash or a hang (the cases run in a subprocess under a timeout)."""

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

HARNESS = Path(__file__).with_name("shd_fuzz.py")
CASES = 280  # 40 of each of the 7 kinds of damage


def test_damaged_shd_files_load_or_fail_cleanly(tmp_path):
    env = {**os.environ, "SNNPLAST_CACHE": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, str(HARNESS), str(tmp_path / "cases"), str(CASES), "7"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(results) == CASES
    raw = [r for r in results if r["outcome"] == "raw"]
    assert not raw, raw[:3]
    for r in results:
        if r["outcome"] == "error":
            message = r["message"]
            assert "\n" not in message, r
            assert r["file"] in message or str(Path(r["file"]).parent) in message, r
        else:
            assert r["labels_ok"] and r["shape"][1:] == [8, 140], r
    outcomes = collections.Counter((r["damage"], r["outcome"]) for r in results)
    # Damage that breaks the layout or the values is always refused, never loaded.
    for damage in ("delete", "rename", "ragged", "bad_value"):
        assert outcomes[(damage, "loaded")] == 0, (damage, outcomes)


def test_damaged_heap_object_is_refused_before_libhdf5_reads_it(tmp_path):
    """A heap object's size field grown by 1024 bytes: libhdf5 reading that sample loops
    forever (seen in the fuzz); the file is refused before it is read."""
    import re

    import numpy as np
    import pytest

    from snnplast import data
    from snnplast.data import SHDFormatError, check_shd_file

    path = tmp_path / "shd_train.h5"
    times = [np.linspace(0.1, 0.5, 13)] * 4
    data.write_shd_h5(path, times, [np.arange(13)] * 4, [0, 1, 0, 1], [0] * 4, ["a", "b"])
    check_shd_file(path)
    raw = bytearray(path.read_bytes())
    heap = raw.find(b"GCOL")
    first_object = heap + 16  # "GCOL", version, 3 reserved bytes, 8-byte collection size
    size_at = first_object + 8  # index (2), reference count (2), reserved (4), then the size
    assert int.from_bytes(raw[size_at : size_at + 8], "little") == 26  # 13 float16 values
    raw[size_at + 1] ^= 4
    path.write_bytes(bytes(raw))
    with pytest.raises(SHDFormatError, match=re.escape(f"{path}: spikes/times[0] is damaged")):
        check_shd_file(path)
