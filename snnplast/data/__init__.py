"""Spiking data sets: the SHD file format, loading through tonic, binning, and a synthetic stand-in.

``load_dataset`` is the entry point; the rest are the pieces it is made of.
"""

from ._binning import bin_events as bin_events
from ._binning import bin_samples as bin_samples
from ._cache import cache_root as cache_root
from ._cache import shd_data_dir as shd_data_dir
from ._dataset import SpikeDataset as SpikeDataset
from ._dataset import Split as Split
from ._loader import load_dataset as load_dataset
from ._shd_file import SHDFormatError as SHDFormatError
from ._shd_file import SHDMissingError as SHDMissingError
from ._shd_file import check_shd_file as check_shd_file
from ._shd_file import write_shd_h5 as write_shd_h5
from ._speakers import split_by_speaker as split_by_speaker
from ._synth import make_synth_shd as make_synth_shd
from ._tonic_split import EventSplit as EventSplit
from ._tonic_split import load_shd_split as load_shd_split
from ._tonic_split import tonic_root as tonic_root
