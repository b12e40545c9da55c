"""The containers the trainer reads: dense, binned splits of a spiking data set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._errors import ValidationError


# eq=False: the generated __eq__ would compare arrays element-wise and fail on truth value.
@dataclass(frozen=True, eq=False)
class Split:
    """One split, binned into dense frames.

    **Fields:**

    - `x`: ``[N, T, C]`` uint8 spike counts per time bin and (pooled) channel.
    - `y`: ``[N]`` int32 class labels.
    - `speakers`: ``[N]`` int32 speaker ids.
    """

    x: np.ndarray
    y: np.ndarray
    speakers: np.ndarray

    def __post_init__(self):
        n = {self.x.shape[0], self.y.shape[0], self.speakers.shape[0]}
        if self.x.ndim != 3 or len(n) != 1:
            raise ValidationError(
                f"Split needs x [N, T, C] and y, speakers [N], got shapes {self.x.shape}, "
                f"{self.y.shape}, {self.speakers.shape}"
            )

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True, eq=False)
class SpikeDataset:
    """A data set ready for training: train / validation / test splits and what describes them.

    **Fields:**

    - `train`, `val`: the training file split by speaker (no speaker in both), or the training
      file and the set's own validation file (SSC's).
    - `test`: the test file.
    - `n_classes`: number of classes.
    - `n_channels`: ``C``, input channels after pooling.
    - `n_bins`: ``T``, time bins.
    - `class_names`: one name per class.
    - `source`: where the data came from, ``"synth:<folder>"``, ``"shd:<folder>"``,
      ``"ssc:<folder>"``, ...
    """

    train: Split
    val: Split
    test: Split
    n_classes: int
    n_channels: int
    n_bins: int
    class_names: tuple[str, ...]
    source: str
