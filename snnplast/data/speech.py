"""Spoken digits from eSpeak NG: SHD's 20 words said by many synthetic speakers.

A *speaker* is a voice variant with an accent, a base pitch, a pitch range and a rate; a plan of
utterances is a deterministic function of a seed, and :func:`synthesize` speaks it (it needs the
``speech`` extra: ``pip install 'snnplast[speech]'``)::

    train, test = snnplast.data.speech.plan_corpus(10, 2, seed=0)
    clips, rate = snnplast.data.speech.synthesize(train[:2])   # "zero", "one"
    spikes = snnplast.data.cochlea_batch(clips, rate, seeds=[0, 1])
"""

from ._speech.corpus import ENGLISH_WORDS as ENGLISH_WORDS
from ._speech.corpus import GERMAN_WORDS as GERMAN_WORDS
from ._speech.corpus import SHD_KEYS as SHD_KEYS
from ._speech.corpus import VOICE_VARIANTS as VOICE_VARIANTS
from ._speech.corpus import Speaker as Speaker
from ._speech.corpus import Utterance as Utterance
from ._speech.corpus import make_speakers as make_speakers
from ._speech.corpus import plan_corpus as plan_corpus
from ._speech.corpus import synthesize as synthesize
