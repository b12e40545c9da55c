"""Randomly damaged SHD files fed to ``load_dataset``: the harness behind ``test_fuzz_shd.py``.

Run as a script (``python tests/shd_fuzz.py FOLDER N SEED``), it writes one valid pair of SHD
files, then makes `N` damaged copies (truncated, bytes flipped, datasets deleted, renamed or
retyped, arrays of different lengths, values out of range), loads each with
``snnplast.data.load_dataset`` and prints one JSON line per case: the damage, and either the
loaded shapes or the error's type and message. It runs in its own process so that a crash or a
hang inside the HDF5 library cannot take the test run with it.
"""

from __future__ import annotations

import json
import shutil
import sys
import traceback
from pathlib import Path

import h5py
import numpy as np

KEYS = ["zero", "one", "two"]
DATASETS = ["spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker"]


def _events(n, seed):
    rng = np.random.default_rng(seed)
    times = [np.sort(rng.uniform(0.0, 1.3, size=rng.integers(1, 30))) for _ in range(n)]
    units = [rng.integers(0, 700, size=t.size) for t in times]
    return times, units, rng.integers(0, len(KEYS), size=n), rng.integers(0, 4, size=n)


def _vlen(arrays, dtype):
    out = np.empty(len(arrays), dtype=object)
    out[:] = [np.asarray(a, dtype) for a in arrays]
    return out


def truncate(path, rng):
    data = path.read_bytes()
    cut = int(rng.integers(0, len(data)))
    path.write_bytes(data[:cut])
    return f"truncated to {cut} of {len(data)} bytes"


def flip(path, rng):
    data = bytearray(path.read_bytes())
    n = int(rng.integers(1, 40))
    for i in rng.integers(0, len(data), size=n):
        data[i] ^= 1 << int(rng.integers(0, 8))
    path.write_bytes(bytes(data))
    return f"{n} bits flipped"


def delete(path, rng):
    name = str(rng.choice(DATASETS + ["extra", "spikes"]))
    with h5py.File(path, "r+") as f:
        del f[name]
    return f"deleted {name}"


def rename(path, rng):
    name = str(rng.choice(DATASETS))
    target = str(rng.choice([name + "_old", name.upper(), "other/" + name.split("/")[-1]]))
    with h5py.File(path, "r+") as f:
        f.move(name, target)
    return f"renamed {name} to {target}"


def retype(path, rng):
    name = str(rng.choice(DATASETS))
    with h5py.File(path, "r+") as f:
        n = len(f["labels"]) if "labels" in f else 12
        options = {
            "float": lambda: np.linspace(0, 1, n),
            "nan floats": lambda: np.full(n, np.nan),
            "strings": lambda: np.array([b"x"] * n),
            "2-D": lambda: np.zeros((n, 2), np.uint16),
            "scalar": lambda: np.uint16(3),
            "empty": lambda: np.zeros(0, np.uint16),
            "vlen int": lambda: _vlen([np.arange(3)] * n, np.int32),
            "vlen float": lambda: _vlen([np.linspace(0, 1, 3)] * n, np.float32),
            "vlen bytes": lambda: np.array([b"ab"] * n, dtype=object),
        }
        kind = str(rng.choice(list(options)))
        value = options[kind]()
        del f[name]
        if kind.startswith("vlen"):
            base = {"vlen int": np.int32, "vlen float": np.float32, "vlen bytes": None}[kind]
            dtype = h5py.string_dtype() if base is None else h5py.vlen_dtype(base)
            f.create_dataset(name, data=value, dtype=dtype)
        else:
            f.create_dataset(name, data=value)
    return f"{name} retyped as {kind}"


def ragged(path, rng):
    with h5py.File(path, "r+") as f:
        choice = int(rng.integers(0, 3))
        if choice == 0:
            i = int(rng.integers(0, len(f["labels"])))
            t = f["spikes/times"][i]
            f["spikes/times"][i] = np.append(t, np.float16(0.5))
            return f"sample {i}: one more time than units"
        name = str(rng.choice(["labels", "extra/speaker", "spikes/times", "spikes/units"]))
        old = f[name][()]
        del f[name]
        new = old[:-1] if choice == 1 else np.concatenate([old, old[:2]])
        if name.startswith("spikes"):
            f.create_dataset(name, data=new, dtype=h5py.vlen_dtype(new[0].dtype))
        else:
            f.create_dataset(name, data=new)
        return f"{name} {'shorter' if choice == 1 else 'longer'} than the others"


def bad_value(path, rng):
    with h5py.File(path, "r+") as f:
        i = int(rng.integers(0, len(f["labels"])))
        choice = int(rng.integers(0, 5))
        if choice == 0:
            t = f["spikes/times"][i]
            t[0] = np.nan
            f["spikes/times"][i] = t
            return f"sample {i}: a NaN time"
        if choice == 1:
            old = f["spikes/times"][()]
            del f["spikes/times"]
            old[i] = np.asarray(old[i], np.float32) - 2.0
            f.create_dataset("spikes/times", data=_vlen(old, np.float32),
                             dtype=h5py.vlen_dtype(np.float32))
            return f"sample {i}: negative times"
        if choice == 2:
            u = f["spikes/units"][i]
            u[-1] = int(rng.integers(700, 65535))
            f["spikes/units"][i] = u
            return f"sample {i}: a unit beyond the channels"
        if choice == 3:
            labels = f["labels"][()]
            labels[i] = len(KEYS) + int(rng.integers(0, 100))
            f["labels"][...] = labels
            return f"sample {i}: a label beyond the classes"
        f.attrs["n_channels"] = rng.choice([0, 350, -4, 2.5])
        return f"n_channels attribute {f.attrs['n_channels']}"


DAMAGES = [truncate, flip, delete, rename, retype, ragged, bad_value]


def main(folder: Path, n: int, seed: int) -> None:
    from snnplast import data
    from snnplast.data import SHDFormatError, SHDMissingError, load_dataset

    base = folder / "base"
    base.mkdir(parents=True)
    data.write_shd_h5(base / "shd_train.h5", *_events(12, 1), KEYS)
    data.write_shd_h5(base / "shd_test.h5", *_events(6, 2), KEYS)
    rng = np.random.default_rng(seed)
    for case in range(n):
        damage = DAMAGES[case % len(DAMAGES)]
        here = folder / f"case{case}"
        shutil.copytree(base, here)
        path = (here / str(rng.choice(["shd_train.h5", "shd_test.h5"]))).absolute()
        try:
            what = damage(path, rng)
        except (OSError, KeyError, ValueError, TypeError) as e:
            # The damage itself could not be made (a file already broken by an earlier step).
            what = f"{damage.__name__} not applicable ({type(e).__name__})"
        result = {"case": case, "damage": damage.__name__, "what": what, "file": str(path)}
        try:
            ds = load_dataset(here, n_bins=8, val_speakers=0, cache_dir=folder / "cache",
                              progress=False)
            result.update(outcome="loaded", shape=list(ds.train.x.shape), n_test=len(ds.test.y),
                          labels_ok=bool(np.all(ds.train.y < ds.n_classes)))
        except (SHDFormatError, SHDMissingError) as e:
            result.update(outcome="error", type=type(e).__name__, message=str(e))
        except Exception as e:  # noqa: BLE001 - anything else is what the test must catch
            result.update(outcome="raw", type=f"{type(e).__module__}.{type(e).__name__}",
                          message=str(e), where=traceback.format_exc()[-1500:])
        print(json.dumps(result), flush=True)
        shutil.rmtree(here, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
