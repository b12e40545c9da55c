"""Built-in cells. Each file holds one model; its docstring gives the update equations and the
Jacobian structure the trace engine infers from them."""

from ._alif import ALIF as ALIF
from ._attention import LinearAttention as LinearAttention
from ._columnar import Columnar as Columnar
from ._gru import GRU as GRU
from ._li import LI as LI
from ._lif import LIF as LIF
from ._lstm import LSTM as LSTM
from ._rnn import RNN as RNN
