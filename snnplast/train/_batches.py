"""Batches of a split: shuffled for training, padded to one shape for evaluation."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._augment import Augment, blend, class_members, same_class_partners


def shuffled_batches(n: int, batch: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays of `batch` samples from a fresh permutation of ``range(n)``.

    The last incomplete batch is dropped, so every step has one shape and compiles once; a
    fresh permutation each epoch means no sample is always the one left out.
    """
    order = rng.permutation(n)
    for start in range(0, n - batch + 1, batch):
        yield order[start : start + batch]


def training_batches(split, batch: int, augment: Augment, rng: np.random.Generator):
    """``(index, x, y)`` of one epoch's training steps, as :func:`fit` trains on them: shuffled
    (:func:`shuffled_batches`), blended with partners of the same class (:func:`blend`, when
    ``augment.blend`` > 0) and augmented (:class:`Augment`), all drawn from `rng` in that
    order."""
    members = class_members(split.y) if augment.blend else None
    for index in shuffled_batches(len(split.y), batch, rng):
        x, y = split.x[index], split.y[index]
        if members is not None:
            partners = split.x[same_class_partners(y, members, rng)]
            x = blend(x, partners, augment.blend, rng)
        yield index, augment(x, rng), y


def padded_batches(x: np.ndarray, y: np.ndarray, size: int):
    """``(x, y, weight)`` batches of exactly `size` samples; padding has weight 0."""
    n = x.shape[0]
    for start in range(0, n, size):
        stop = min(start + size, n)
        pad = size - (stop - start)
        weight = np.ones(size, np.float32)
        xb, yb = x[start:stop], y[start:stop]
        if pad:
            weight[size - pad :] = 0.0
            xb = np.concatenate([xb, np.zeros((pad, *x.shape[1:]), x.dtype)])
            yb = np.concatenate([yb, np.zeros(pad, y.dtype)])
        yield xb, yb, weight
