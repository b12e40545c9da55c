# ruff: noqa: I001 - the policies are imported in the order `--help` lists their methods.
"""Transport policies: how much of the recurrent Jacobian a trace carries.

A policy is a small :class:`Policy` subclass (one file each); it receives each block of the
state Jacobian as a :class:`snnplast.engine.SJac` and returns what of it to carry, using the
structured-Jacobian operations of :mod:`snnplast.engine`. :func:`register_method` gives it a
name on the command line.
"""

from ._base import Policy as Policy
from ._base import PolicyContext as PolicyContext
from ._base import check_lam as check_lam
from ._registry import METHODS as METHODS
from ._registry import MethodEntry as MethodEntry
from ._registry import policy_from_text as policy_from_text
from ._registry import register_method as register_method

# Each module registers its method in one line; the order here is the order of `--help`.
from ._exact import Exact as Exact
from ._diagonal import Diagonal as Diagonal
from ._random_k import RandomK as RandomK
from ._immediate import Immediate as Immediate
from ._head_sparse import HeadSparse as HeadSparse
from ._columnar import ColumnarPolicy as ColumnarPolicy
