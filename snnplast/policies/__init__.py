"""Transport policies: how much of the recurrent Jacobian a trace carries."""

from ._base import Policy as Policy
from ._columnar import Columnar as Columnar
from ._diagonal import Diagonal as Diagonal
from ._exact import Exact as Exact
from ._head_sparse import HeadSparse as HeadSparse
from ._immediate import Immediate as Immediate
from ._random_k import RandomK as RandomK
