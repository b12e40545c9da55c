"""Where a run stands, as a checkpoint records it, and the checks before one is continued.

A run's position is (epoch, step): the next batch to train is step `step` of epoch `epoch`. The
batches of an epoch are drawn from one NumPy generator (shuffle, then a channel shift per
batch); the checkpoint keeps that generator's state at the start of the epoch, so a resumed run
draws the epoch again and skips the `step` batches already trained: the same batches, in the
same order, with the same shifts, whatever the generator draws per batch.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ._checkpoint import CheckpointError, read_checkpoint_header

FORMAT = 1


@dataclasses.dataclass
class RunState:
    """The host-side state of the training loop.

    **Fields:**

    - `epoch`, `step`: the next batch to train (epochs from 1, steps from 0).
    - `epoch_rng`: the NumPy bit generator's state at the start of `epoch`.
    - `loss_sum`, `correct`, `seen`: running sums over the steps of `epoch` trained so far.
    - `skipped`: batches of `epoch` skipped for a non-finite value (``on_nan="skip"``).
    - `records`: the metrics of the completed epochs.
    - `nan_skips`: all batches skipped so far.
    - `seconds`: wall time spent by earlier sessions of the run.
    - `resumes`: how many times the run was continued.
    - `train_seconds`: training time of `epoch` so far in earlier sessions.
    """

    epoch: int
    step: int
    epoch_rng: dict
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    skipped: int = 0
    records: list[dict] = dataclasses.field(default_factory=list)
    nan_skips: int = 0
    seconds: float = 0.0
    resumes: int = 0
    train_seconds: float = 0.0

    def to_header(self, config: dict, dataset: dict, options: dict) -> dict:
        return {
            "format": FORMAT,
            "state": dataclasses.asdict(self),
            "config": config,
            "dataset": dataset,
            "options": options,
        }

    @classmethod
    def from_header(cls, header: dict) -> RunState:
        return cls(**header["state"])


def check_header(header: dict, where) -> dict:
    """Raise :class:`CheckpointError` unless `header` is a checkpoint this version can continue."""
    if header.get("format") != FORMAT or not {"state", "config", "dataset"} <= header.keys():
        raise CheckpointError(f"{where}: checkpoint of an unknown format {header.get('format')!r}")
    fields = {f.name for f in dataclasses.fields(RunState)}
    if not isinstance(header["state"], dict) or set(header["state"]) != fields:
        raise CheckpointError(f"{where}: damaged checkpoint (loop state)")
    return header


def run_status(run_dir: str | os.PathLike) -> dict:
    """What a run folder holds, read from its checkpoint header only (no arrays, no data).

    **Returns:** the header, with ``complete`` (bool) added.

    **Raises:** :class:`CheckpointError`, one line naming the folder, when it is not a run.
    """
    header = check_header(read_checkpoint_header(run_dir), Path(run_dir).expanduser())
    epochs = header["config"].get("epochs")
    header["complete"] = header["state"]["epoch"] > epochs
    return header
