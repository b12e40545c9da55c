"""The trace engine: a cell's step as a graph of structured Jacobians, compressed by vertex
elimination."""

from ._derive import TraceStructure as TraceStructure
from ._derive import derive as derive
from ._derive import step_graph as step_graph
from ._graph import StepGraph as StepGraph
from ._rules import RuleContext as RuleContext
from ._rules import register_rule as register_rule
from ._sjac import SJac as SJac
