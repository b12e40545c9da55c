"""Training: a model (registered, ``module:factory`` or a Cell object), the per-step objective,
the gradient dispatch, the loop and the comparison of methods.

>>> from snnplast.data import load_dataset
>>> from snnplast.train import TrainConfig, fit
>>> summary = fit(TrainConfig(model="rlif", epochs=2), load_dataset("synth"), "runs/demo")
"""

from ._agreement import first_batch as first_batch
from ._agreement import gradient_agreement as gradient_agreement
from ._checkpoint import CHECKPOINT_FILE as CHECKPOINT_FILE
from ._checkpoint import CheckpointError as CheckpointError
from ._checkpoint import load_model as load_model
from ._compare import compare as compare
from ._config import TrainConfig as TrainConfig
from ._evaluate import evaluate as evaluate
from ._evaluate_model import evaluate_model as evaluate_model
from ._guard import ON_NAN as ON_NAN
from ._guard import DivergenceError as DivergenceError
from ._method import method_help as method_help
from ._method import method_usages as method_usages
from ._method import parse_method as parse_method
from ._method_list import parse_methods as parse_methods
from ._metrics import peak_memory_bytes as peak_memory_bytes
from ._metrics import temp_bytes as temp_bytes
from ._models import MODELS as MODELS
from ._models import check_model as check_model
from ._models import register_model as register_model
from ._models import resolve_model as resolve_model
from ._network import build_model as build_model
from ._network import complete_model as complete_model
from ._objective import batch_objective as batch_objective
from ._objective import cross_entropy as cross_entropy
from ._objective import loss_and_grad as loss_and_grad
from ._objective import sample_objective as sample_objective
from ._optimizer import SCHEDULES as SCHEDULES
from ._optimizer import make_optimizer as make_optimizer
from ._plot import plot_runs as plot_runs
from ._report import format_bytes as format_bytes
from ._resume import run_status as run_status
from ._sharding import DataParallel as DataParallel
from ._sharding import initialize_distributed as initialize_distributed
from ._sinks import MetricsSink as MetricsSink
from ._sinks import TensorBoardSink as TensorBoardSink
from ._trainer import fit as fit
