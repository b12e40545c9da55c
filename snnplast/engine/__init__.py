"""The trace engine: a cell's step as a graph of structured Jacobians, compressed by vertex
elimination."""

from ._derive import TraceStructure as TraceStructure
from ._derive import derive as derive
from ._derive import step_graph as step_graph
from ._graph import StepGraph as StepGraph
from ._rules import RuleContext as RuleContext
from ._rules import register_rule as register_rule
from ._sjac import SJac as SJac

# The operations on structured Jacobians that a transport policy needs (snnplast.policies).
from ._sjac import add as add
from ._sjac import compose as compose
from ._sjac import dense as dense
from ._sjac import diagonal as diagonal
from ._sjac import diagonal_part as diagonal_part
from ._sjac import materialize as materialize
from ._sjac import restrict_in as restrict_in
from ._sjac import scale as scale
from ._sjac import tie_part as tie_part
