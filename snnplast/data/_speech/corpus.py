"""Spoken digits from eSpeak NG: SHD's 20 words, many synthetic speakers.

SHD's classes are the digits zero to nine spoken in English (labels 0-9) and in German (10-19).
Here a *speaker* is an eSpeak NG voice variant (formants, breathiness, pitch contour: the files
under ``voices/!v``) combined with an English accent, a base pitch, a pitch range and a speaking
rate; each speaker says every word in both languages, like SHD's speakers. Each utterance jitters
rate and pitch a little, and seeds eSpeak's noise generators, so repetitions are not identical.
Everything is a deterministic function of a seed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from ..._errors import ValidationError
from .espeak import Espeak

ENGLISH_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GERMAN_WORDS = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
# Class names as the SHD files spell them (ASCII).
SHD_KEYS = ENGLISH_WORDS + tuple(w.replace("ü", "ue") for w in GERMAN_WORDS)

ENGLISH_ACCENTS = (
    "en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
    "en-029", "en-us-nyc",
)  # fmt: skip
GERMAN_VOICE = "de"

# eSpeak NG 1.52's voice variants (espeak-ng-data/voices/!v) that sound like a person: the
# first three formants scaled by 0.85-1.36 (adult male to female), no echo longer than 50 ms, no
# whisper, tremolo or robot effect, no formant removed. The others (Andy's missing third formant,
# kaukovalta's halved first, robosoft*, whisper*, Demonic, ...) make speakers that no amount of
# training on the natural ones generalises to, and SHD's speakers are people.
VOICE_VARIANTS = (
    "Alex", "Andrea", "Annie", "Denis", "Diogo", "Gene", "Gene2", "Henrique", "Hugo", "Mario",
    "Mike", "Nguyen", "Storm", "adam", "anika", "antonio", "aunty", "belinda", "benjamin", "ed",
    "edward", "edward2", "f1", "f2", "f3", "f4", "f5", "iven", "iven2", "iven3", "iven4", "john",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "linda", "m1", "m2", "m3", "m4",
    "m5", "m6", "m7", "m8", "max", "michel", "miguel", "mike2", "pablo", "paul", "pedro",
    "quincy", "rob", "robert", "sandro", "steph", "steph2", "steph3", "victor",
)  # fmt: skip

# Ranges a speaker is drawn from, and the jitter of one utterance around its speaker.
PITCH = (30, 70)
PITCH_RANGE = (30, 80)
RATE = (140, 200)
RATE_JITTER = 0.06
PITCH_JITTER = 4


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One synthetic speaker.

    **Arguments:**

    - `id`: speaker id as stored in ``extra/speaker``.
    - `variant`: an eSpeak NG voice variant (one of :data:`VOICE_VARIANTS`).
    - `accent`: the English voice (one of :data:`ENGLISH_ACCENTS`); German is always ``"de"``.
    - `pitch`: base pitch 0..99.
    - `pitch_range`: pitch range 0..99.
    - `rate`: speaking rate in words per minute.
    """

    id: int
    variant: str
    accent: str
    pitch: int
    pitch_range: int
    rate: int

    def voice(self, label: int) -> str:
        """The eSpeak NG voice name for a word of class `label`."""
        language = self.accent if label < 10 else GERMAN_VOICE
        return f"{language}+{self.variant}"


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One word by one speaker, with this utterance's own rate, pitch and noise seed."""

    label: int
    speaker: Speaker
    rate: int
    pitch: int
    seed: int

    @property
    def text(self) -> str:
        return (ENGLISH_WORDS + GERMAN_WORDS)[self.label]


def _check_count(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValidationError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def make_speakers(
    n: int, variants: Sequence[str], rng: np.random.Generator, first_id: int = 0
) -> list[Speaker]:
    """`n` speakers cycling through `variants` (each used about equally), the rest drawn at random.

    **Arguments:**

    - `n`: number of speakers.
    - `variants`: the voice variants to use.
    - `rng`: the source of randomness.
    - `first_id`: id of the first speaker; the others count up.

    **Returns:** a list of :class:`Speaker`.
    """
    order = rng.permutation(len(variants))
    speakers = []
    for i in range(n):
        speakers.append(
            Speaker(
                id=first_id + i,
                variant=variants[order[i % len(variants)]],
                accent=ENGLISH_ACCENTS[rng.integers(len(ENGLISH_ACCENTS))],
                pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                pitch_range=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
                rate=int(rng.integers(RATE[0], RATE[1] + 1)),
            )
        )
    return speakers


def utterances(speakers: Sequence[Speaker], rng: np.random.Generator) -> list[Utterance]:
    """Every speaker says each of the 20 words once, with jittered rate and pitch."""
    out = []
    for speaker in speakers:
        for label in range(len(SHD_KEYS)):
            rate = speaker.rate * (1.0 + rng.uniform(-RATE_JITTER, RATE_JITTER))
            pitch = speaker.pitch + rng.integers(-PITCH_JITTER, PITCH_JITTER + 1)
            out.append(
                Utterance(
                    label=label,
                    speaker=speaker,
                    rate=int(np.clip(round(rate), 80, 450)),
                    pitch=int(np.clip(pitch, 0, 99)),
                    seed=int(rng.integers(2**31)),
                )
            )
    return out


def plan_corpus(
    train_speakers: int, test_speakers: int, *, seed: int = 0, test_variant_fraction: float = 0.2
) -> tuple[list[Utterance], list[Utterance]]:
    """Training and test utterances whose speakers never meet.

    The voice variants themselves are split: test speakers use variants no training speaker
    uses, so the test set measures generalisation to unheard voices, as SHD's held-out speakers
    do.

    **Arguments:**

    - `train_speakers`, `test_speakers`: speakers per split; each says all 20 words once.
    - `seed`: determines everything.
    - `test_variant_fraction`: share of the voice variants reserved for test speakers.

    **Returns:** ``(train, test)`` lists of :class:`Utterance`; speaker ids are
    ``0..train_speakers-1`` for training and count on from there for test.
    """
    train_speakers = _check_count("train_speakers", train_speakers)
    test_speakers = _check_count("test_speakers", test_speakers)
    if not 0.0 < test_variant_fraction < 1.0:
        raise ValidationError(f"test_variant_fraction must be in (0, 1), got {test_variant_fraction!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    shuffled = [VOICE_VARIANTS[i] for i in rng.permutation(len(VOICE_VARIANTS))]
    n_test = max(1, round(test_variant_fraction * len(shuffled)))
    test_variants, train_variants = shuffled[:n_test], shuffled[n_test:]
    train = utterances(make_speakers(train_speakers, train_variants, rng), rng)
    test = utterances(make_speakers(test_speakers, test_variants, rng, train_speakers), rng)
    return train, test


def synthesize(
    plan: Sequence[Utterance], *, servers: int = 2, progress: bool | str = False
) -> tuple[list[np.ndarray], int]:
    """Speak every utterance of `plan` with eSpeak NG.

    **Arguments:**

    - `plan`: the utterances.
    - `servers`: eSpeak NG processes working in parallel (each utterance's audio is the same
      whichever speaks it).
    - `progress`: show a progress bar (a string is used as its label).

    **Returns:** ``(clips, sample_rate)``: one int16 waveform per utterance, as eSpeak NG made
    it (with its short leading and trailing silences).

    **Raises:** :class:`SpeechUnavailableError` without the ``speech`` extra.
    """
    label = progress if isinstance(progress, str) else "speech"
    clips: list[np.ndarray | None] = [None] * len(plan)
    servers = max(1, min(servers, len(plan)))
    engines = []
    try:
        for _ in range(servers):
            engines.append(Espeak())
        with tqdm(total=len(plan), desc=label, unit="word", disable=not progress) as bar:

            def speak(worker: int) -> None:
                engine = engines[worker]
                for i in range(worker, len(plan), servers):
                    u = plan[i]
                    clips[i] = engine.synthesize(
                        u.text, u.speaker.voice(u.label), rate=u.rate, pitch=u.pitch,
                        pitch_range=u.speaker.pitch_range, seed=u.seed,
                    )  # fmt: skip
                    bar.update(1)

            # Threads only wait on the servers' pipes; the synthesis runs in their processes.
            with concurrent.futures.ThreadPoolExecutor(servers) as pool:
                for future in [pool.submit(speak, w) for w in range(servers)]:
                    future.result()
        return clips, engines[0].sample_rate  # type: ignore[return-value]
    finally:
        for engine in engines:
            engine.close()
