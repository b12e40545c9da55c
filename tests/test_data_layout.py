"""The data package's folders: its public names stay where they were, every module imports.

The names below were captured from ``snnplast.data`` and ``snnplast.data.speech`` before the
package was arranged into folders (issue 14, item 4); a user's ``from snnplast.data import X``
must keep working for each of them, and nothing private may leak into the public surface.
"""

import importlib
import pkgutil
from pathlib import Path

import pytest

import snnplast.data

DATA_NAMES = [
    "Acoustics", "BasilarMembrane", "BushyCell", "CLEAN", "Cochlea", "DEFAULT_DATA",
    "EventSplit", "HairCell", "RECORDED", "SHDFormatError", "SHDMissingError",
    "SpeechUnavailableError", "SpikeDataset", "Spikes", "Split", "bin_events", "bin_samples",
    "cache_root", "check_shd_file", "cochlea", "cochlea_batch", "convert_audio",
    "ensure_speech_shd", "load_dataset", "load_recordings", "load_shd_split", "make_speech_shd",
    "make_synth_shd", "plot_sample", "read_wav", "resample", "shd_data_dir", "speech",
    "speech_shd_dir", "split_by_speaker", "tonic_root", "write_shd_h5",
]  # fmt: skip
SPEECH_NAMES = [
    "ENGLISH_WORDS", "GERMAN_WORDS", "SHD_KEYS", "Speaker", "Utterance", "VOICE_VARIANTS",
    "make_speakers", "plan_corpus", "synthesize",
]  # fmt: skip
# Run as a script by its own interpreter (see its docstring), never imported.
SCRIPTS = {"snnplast.data._speech.espeak_server"}

ROOT = Path(snnplast.data.__file__).parent


def public(module):
    return sorted(n for n in dir(module) if not n.startswith("_"))


@pytest.mark.parametrize(
    "module, names", [("snnplast.data", DATA_NAMES), ("snnplast.data.speech", SPEECH_NAMES)]
)
def test_public_names_are_the_ones_before_the_move(module, names):
    module = importlib.import_module(module)
    assert public(module) == sorted(names)
    for name in names:
        scope = {}
        # The very statement users write.
        exec(f"from {module.__name__} import {name}", scope)  # noqa: S102
        assert scope[name] is getattr(module, name)


def test_every_module_imports_and_every_folder_says_what_it_holds():
    packages, modules = [], []
    for info in pkgutil.walk_packages([str(ROOT)], prefix="snnplast.data."):
        (packages if info.ispkg else modules).append(info.name)
        if info.name not in SCRIPTS:
            importlib.import_module(info.name)
    assert len(packages) >= 4
    for name in packages:
        doc = importlib.import_module(name).__doc__
        assert doc and len(doc.strip().splitlines()) == 1, name
    # The folders hold the modules: beside them only the public speech names and the cache.
    flat = {m.rsplit(".", 1)[1] for m in modules if m.count(".") == 2}
    assert flat == {"speech", "_cache"}

