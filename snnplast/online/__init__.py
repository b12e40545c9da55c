"""Online learning: eligibility traces under a transport policy, combined with the per-step
learning signal; memory independent of sequence length."""

from ._blocked import DEFAULT_BLOCK as DEFAULT_BLOCK
from ._blocked import HOIST_EVERY as HOIST_EVERY
from ._blocked import LATE_SIGNAL as LATE_SIGNAL
from ._blocked import RECOMPUTE_EVERY as RECOMPUTE_EVERY
from ._blocked import UPDATE_SAMPLES as UPDATE_SAMPLES
from ._blocked import BlockedStep as BlockedStep
from ._blocked import accumulation_mode as accumulation_mode
from ._blocked import resolve_block as resolve_block
from ._blocked import samples_per_update as samples_per_update
from ._blocked import whole_sequence_steps as whole_sequence_steps
from ._deferred import CONTRACT_EVERY as CONTRACT_EVERY
from ._deferred import contract_terms as contract_terms
from ._deferred import deferred_pairs as deferred_pairs
from ._fixed_start import FixedStart as FixedStart
from ._fixed_start import fixed_start as fixed_start
from ._head_gathered import GatheredHeadStep as GatheredHeadStep
from ._late_signal import LateSignal as LateSignal
from ._learner import LearnerState as LearnerState
from ._learner import OnlineLearner as OnlineLearner
from ._master_user import master_user_lms as master_user_lms
from ._online_step import OnlineStep as OnlineStep
from ._sequence import online_loss_and_grad as online_loss_and_grad
from ._sequence import online_sequence_gradients as online_sequence_gradients
