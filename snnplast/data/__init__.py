"""Spiking data sets: spoken digits made on this machine, the SHD file format, loading through
tonic, binning, and a procedural stand-in.

``load_dataset`` is the entry point; the rest are the pieces it is made of:

- the Lauscher cochlea, vectorised: :func:`cochlea` / :func:`cochlea_batch` with the stages
  :class:`BasilarMembrane`, :class:`HairCell`, :class:`BushyCell` gathered in :class:`Cochlea`;
- spoken digits from eSpeak NG (:mod:`snnplast.data.speech`) and the SHD look-alike made from
  them (:func:`make_speech_shd`, :func:`ensure_speech_shd`), the default data set;
- :func:`convert_audio` for a folder of your own labelled recordings (WAV, FLAC, Ogg, MP3, ...;
  :func:`read_audio`; any sample rate and number of channels: each is
  resampled to the cochlea's working rate, :func:`resample`), :func:`load_recordings` to bin
  them for a trained model (``load_dataset(folder)`` trains on them, whole speakers held out by
  :func:`hold_out_speakers`), :func:`plot_sample` to look at one sample
  (:func:`plot_recording`: one audio file through the cochlea);
- :class:`Acoustics`: the simulated rooms, microphones, channels and noise the default set's
  training speech is recorded through (:data:`RECORDED`; :data:`CLEAN` for none);
- the SHD layout (:func:`write_shd_h5`, :func:`check_shd_file`) and its loading through tonic.

The code lives in one private folder per part, each module one concept: ``_audio`` (audio files,
resampling), ``_cochlea`` (the cochlea's stages and the worker processes it runs in),
``_speech`` (eSpeak NG, the simulated recording chain, the synthetic SHD), ``_shd`` (the file
format, tonic, the procedural stand-in), ``_loading`` (binning, speaker splits, ``load_dataset``),
``_recordings`` (a folder of the user's own WAV files); ``_cache`` says where derived data lives.
"""

from . import speech as speech
from ._audio.formats import AUDIO_SUFFIXES as AUDIO_SUFFIXES
from ._audio.formats import is_audio as is_audio
from ._audio.formats import read_audio as read_audio
from ._audio.wav import read_wav as read_wav
from ._audio.wav import resample as resample
from ._cache import cache_root as cache_root
from ._cache import shd_data_dir as shd_data_dir
from ._cochlea.basilar_membrane import BasilarMembrane as BasilarMembrane
from ._cochlea.bushy_cell import BushyCell as BushyCell
from ._cochlea.cochlea import Cochlea as Cochlea
from ._cochlea.cochlea import Spikes as Spikes
from ._cochlea.cochlea import cochlea as cochlea
from ._cochlea.cochlea import cochlea_batch as cochlea_batch
from ._cochlea.hair_cell import HairCell as HairCell
from ._loading.binning import bin_events as bin_events
from ._loading.binning import bin_samples as bin_samples
from ._loading.dataset import SpikeDataset as SpikeDataset
from ._loading.dataset import Split as Split
from ._loading.loader import DATA_NAMES as DATA_NAMES
from ._loading.loader import DEFAULT_DATA as DEFAULT_DATA
from ._loading.loader import check_data_source as check_data_source
from ._loading.loader import load_dataset as load_dataset
from ._loading.loader import load_test_split as load_test_split
from ._loading.speakers import split_by_speaker as split_by_speaker
from ._loading.time_axis import TIME_AXES as TIME_AXES
from ._loading.time_axis import check_time_axis as check_time_axis
from ._loading.time_axis import word_span as word_span
from ._recordings.convert import SPEAKER_NAMES as SPEAKER_NAMES
from ._recordings.convert import SkippedRecording as SkippedRecording
from ._recordings.convert import convert_audio as convert_audio
from ._recordings.convert import read_names as read_names
from ._recordings.convert import read_skipped as read_skipped
from ._recordings.load import is_recordings_folder as is_recordings_folder
from ._recordings.load import load_recordings as load_recordings
from ._recordings.show import plot_recording as plot_recording
from ._recordings.split import hold_out_speakers as hold_out_speakers
from ._shd.file import SHDFormatError as SHDFormatError
from ._shd.file import SHDMissingError as SHDMissingError
from ._shd.file import check_shd_file as check_shd_file
from ._shd.file import write_shd_h5 as write_shd_h5
from ._shd.show import plot_sample as plot_sample
from ._shd.synth import make_synth_shd as make_synth_shd
from ._shd.tonic_split import EventSplit as EventSplit
from ._shd.tonic_split import load_shd_split as load_shd_split
from ._shd.tonic_split import tonic_root as tonic_root
from ._speech.acoustics import CLEAN as CLEAN
from ._speech.acoustics import RECORDED as RECORDED
from ._speech.acoustics import Acoustics as Acoustics
from ._speech.espeak import SpeechUnavailableError as SpeechUnavailableError
from ._speech.speech_shd import DEFAULT_PER_CLASS as DEFAULT_SPEECH_PER_CLASS
from ._speech.speech_shd import ensure_speech_shd as ensure_speech_shd
from ._speech.speech_shd import make_speech_shd as make_speech_shd
from ._speech.speech_shd import speech_shd_dir as speech_shd_dir
