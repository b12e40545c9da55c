"""The optimiser of a training run: Adam, with its learning rate held or decayed over the run."""

from __future__ import annotations

from collections.abc import Callable

import optax

from .._errors import ValidationError

# Learning rate over the run, by name: (peak rate, total optimiser steps) -> rate or schedule.
_SCHEDULES: dict[str, Callable[[float, int], optax.ScalarOrSchedule]] = {
    "constant": lambda lr, total: lr,
    # Down to zero by the last step: the last epochs average out the batch noise, so the final
    # model is not one noisy step away from a better one.
    "cosine": lambda lr, total: optax.cosine_decay_schedule(lr, max(total, 1)),
}
SCHEDULES = tuple(_SCHEDULES)


def check_schedule(name) -> None:
    if name not in _SCHEDULES:
        raise ValidationError(f"schedule must be one of {', '.join(SCHEDULES)}, got {name!r}")


def make_optimizer(lr: float, schedule: str, total_steps: int) -> optax.GradientTransformation:
    """Adam at learning rate `lr`, following `schedule` over `total_steps` optimiser steps."""
    check_schedule(schedule)
    return optax.adam(_SCHEDULES[schedule](lr, total_steps))
