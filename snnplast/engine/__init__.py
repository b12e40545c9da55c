# ruff: noqa: I001 - grouped by concept: representation, the parts policies keep, batching.
"""The trace engine: a cell's step as a graph of structured Jacobians, compressed by vertex
elimination."""

from ._derive import TraceStructure as TraceStructure
from ._derive import derive as derive
from ._derive import step_graph as step_graph
from ._dtype import is_float as is_float
from ._dtype import state_dtype as state_dtype
from ._graph import StepGraph as StepGraph
from ._names import state_names as state_names
from ._names import traced_param_names as traced_param_names
from ._rules import RuleContext as RuleContext
from ._rules import register_rule as register_rule
from . import _index_rules  # noqa: F401 - registers the rules of the ops that place by index
from . import _axis_rules  # noqa: F401 - registers the rules of the ops that work along one axis
from . import _vjp_rule  # noqa: F401 - registers the rule of custom_vjp functions

# Structured Jacobians and their algebra (the representation).
from ._sjac import Abstract as Abstract
from ._sjac import SJac as SJac
from ._sjac import add as add
from ._sjac import coerce as coerce
from ._sjac import compose as compose
from ._sjac import compose_cost as compose_cost
from ._sjac import dense as dense
from ._sjac import diagonal as diagonal
from ._sjac import join_structure as join_structure
from ._sjac import materialize as materialize
from ._sjac import scale as scale

# Chains of products in their cheapest order (the trace update's H~ G).
from ._chain import ChainPlan as ChainPlan
from ._chain import chain as chain
from ._chain import plan_chain as plan_chain

# The parts of a block that a transport policy keeps (snnplast.policies).
from ._parts import diagonal_part as diagonal_part
from ._parts import restrict_in as restrict_in
from ._parts import tie_part as tie_part

# The input-only part of a step, evaluated for many steps at once (snnplast.online).
from ._hoist import HoistPlan as HoistPlan
from ._hoist import plan_hoist as plan_hoist

# A learning signal contracted with a batch of traces (snnplast.online).
from ._batch import contract_batch as contract_batch
