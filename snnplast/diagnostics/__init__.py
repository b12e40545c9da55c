"""Diagnostics users can run on their own model: how well a transport policy's gradient points
where the exact gradient points, step by step, how the recurrent Jacobian is conditioned, and
what each policy's traces cost."""

from ._alignment import Alignment as Alignment
from ._alignment import gradient_alignment as gradient_alignment
from ._plot import plot_alignment as plot_alignment
from ._plot import plot_spectrum as plot_spectrum
from ._spectrum import Spectrum as Spectrum
from ._spectrum import influence_spectrum as influence_spectrum
from ._spectrum import jacobian_spectrum as jacobian_spectrum
from ._trace_memory import trace_table as trace_table
