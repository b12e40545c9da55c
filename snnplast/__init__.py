"""snnplast: gradient-based synaptic plasticity in JAX.

Neuron models are Equinox modules describing one time step of one sample (:class:`Cell`); the
framework batches, unrolls and differentiates them.
"""

from . import surrogates as surrogates
from ._errors import ValidationError as ValidationError
from .engine import TraceStructure as TraceStructure
from .engine import derive as derive
from ._cell import Cell as Cell
from ._cell import Sequential as Sequential
from ._gradients import gradients as gradients
from ._rollout import sequence_loss as sequence_loss
from ._rollout import unroll as unroll
from ._truncated import TruncatedBPTT as TruncatedBPTT
from .cells import ALIF as ALIF
from .cells import GRU as GRU
from .cells import LI as LI
from .cells import LIF as LIF
from .cells import LSTM as LSTM
from .cells import RNN as RNN
from .cells import Columnar as Columnar
from .cells import LinearAttention as LinearAttention

from .online import OnlineLearner as OnlineLearner
from .policies import ColumnarPolicy as ColumnarPolicy
from .policies import Diagonal as Diagonal
from .policies import Exact as Exact
from .policies import HeadSparse as HeadSparse
from .policies import Immediate as Immediate
from .policies import Policy as Policy
from .policies import PolicyContext as PolicyContext
from .policies import RandomK as RandomK
from . import diagnostics as diagnostics

__version__ = "0.1.0"
