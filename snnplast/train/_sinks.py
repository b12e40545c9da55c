"""Metrics sinks: where :func:`fit` sends each epoch's numbers besides ``metrics.jsonl``.

A sink gets every epoch's record as it is written; whoever made it closes it. The one
built in writes TensorBoard event files through ``tensorboardX`` (the ``tensorboard`` extra: no
TensorFlow or PyTorch needed).
"""

from __future__ import annotations

import abc
import os
from pathlib import Path


class MetricsSink(abc.ABC):
    """Receives each epoch's record (``metrics.jsonl``'s fields) while :func:`fit` runs."""

    @abc.abstractmethod
    def write(self, record: dict) -> None:
        """Take one epoch's record (``epoch``, ``train_loss``, ``val_accuracy``, ...)."""

    def close(self) -> None:
        """Release what the sink holds (its maker calls this once it is done with it)."""


def _tag(key: str) -> str:
    """``train_loss`` -> ``loss/train``: TensorBoard groups the charts by the tag's first part."""
    split, _, quantity = key.rpartition("_")
    return f"{quantity}/{split}" if split else key


class TensorBoardSink(MetricsSink):
    """Writes every numeric field of each record as a TensorBoard scalar, at step ``epoch``.

    Tags are grouped by quantity: ``loss/train``, ``loss/val``, ``accuracy/test``,
    ``seconds/train``. Events are flushed every epoch, so TensorBoard shows a run as it trains
    and an interrupted run keeps its curves.

    **Arguments:**

    - `log_dir`: the folder for the event file (``tensorboard --logdir`` of a folder of runs
      shows each run by its folder name).

    **Raises:** `ValueError` with the install command when ``tensorboardX`` is not installed.
    """

    def __init__(self, log_dir: str | os.PathLike):
        self.log_dir = Path(log_dir)
        self._writer = self.check_available()(logdir=str(self.log_dir))

    @staticmethod
    def check_available():
        """tensorboardX's ``SummaryWriter``; a one-line `ValueError` saying how to install it."""
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ValueError(
                "TensorBoard logging needs tensorboardX: pip install 'snnplast[tensorboard]'"
            ) from None
        return SummaryWriter

    def write(self, record: dict) -> None:
        epoch = int(record["epoch"])
        for key, value in record.items():
            if key == "epoch" or isinstance(value, bool) or not isinstance(value, int | float):
                continue  # None (no validation split) and non-numbers have no chart
            self._writer.add_scalar(_tag(key), float(value), epoch)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
