"""Spike-domain augmentation of training batches (time stretch, time shift, spike drop),
checked against explicit loops; the channel shift is in test_train.py."""

from __future__ import annotations

import numpy as np
import pytest

from snnplast._cli import build_parser
from snnplast._cli._train import config_from_args
from snnplast.train import TrainConfig
from snnplast.train._augment import (
    Augment,
    blend,
    class_members,
    drop_spikes,
    mask,
    same_class_partners,
    shift_time,
    stretch_time,
)
from snnplast.train._batches import training_batches


def _batch(seed=0, shape=(5, 12, 4)):
    return np.random.default_rng(seed).integers(0, 9, size=shape).astype(np.uint8)


def test_stretch_time_is_nearest_bin_from_zero_with_zeros_after_the_end():
    x = _batch()
    factors = np.array([1.0, 1.5, 0.8, 2.0, 1.1])
    out = stretch_time(x, factors)
    expected = np.zeros_like(x)
    for b, f in enumerate(factors):
        for t in range(x.shape[1]):
            source = int(np.floor(t / f))
            if source < x.shape[1]:
                expected[b, t] = x[b, source]
    assert out.dtype == x.dtype and np.array_equal(out, expected)
    # A slower word keeps its rates: every output bin is a copy of an input bin of its sample.
    assert np.array_equal(stretch_time(x, np.ones(5)), x)


def test_shift_time_moves_each_sample_and_fills_zeros():
    x = _batch(1)
    shifts = np.array([0, 3, -2, 12, -20])
    out = shift_time(x, shifts)
    expected = np.zeros_like(x)
    for b, s in enumerate(shifts):
        for t in range(x.shape[1]):
            if 0 <= t - s < x.shape[1]:
                expected[b, t] = x[b, t - s]
    assert out.dtype == x.dtype and np.array_equal(out, expected)


def test_drop_spikes_thins_each_count_binomially():
    x = np.full((200, 10, 10), 20, np.uint8)
    out = drop_spikes(x, 0.3, np.random.default_rng(2))
    assert out.dtype == x.dtype and np.all(out <= x)
    # 400,000 spikes kept with probability 0.7: the kept fraction within 5 binomial sd.
    n = x.astype(np.int64).sum()
    sd = np.sqrt(n * 0.3 * 0.7) / n
    assert abs(out.astype(np.int64).sum() / n - 0.7) < 5 * sd
    # Per count, the variance of a binomial(20, 0.7) (= 4.2), not a fixed rounding.
    assert out.var() == pytest.approx(20 * 0.7 * 0.3, rel=0.05)


def test_augment_off_draws_nothing_and_each_part_draws_in_order():
    x = _batch(3)
    rng = np.random.default_rng(4)
    state = rng.bit_generator.state
    assert Augment()(x, rng) is x and rng.bit_generator.state == state
    # Each part by hand, drawn from the same generator in the same order.
    augment = Augment(
        channel_shift=1, time_stretch=0.2, time_shift=2, spike_drop=0.25, time_mask=3,
        channel_mask=2,
    )  # fmt: skip
    got = augment(x, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    from snnplast.train._augment import shift_channels

    by_hand = shift_channels(x, rng.integers(-1, 2, size=5))
    by_hand = stretch_time(by_hand, rng.uniform(0.8, 1.2, size=5))
    by_hand = shift_time(by_hand, rng.integers(-2, 3, size=5))
    by_hand = drop_spikes(by_hand, 0.25, rng)
    for axis, width in ((1, 3), (2, 2)):
        widths = rng.integers(0, width + 1, size=5)
        starts = (rng.random(5) * (x.shape[axis] - widths + 1)).astype(np.int64)
        by_hand = mask(by_hand, axis, starts, widths)
    assert np.array_equal(got, by_hand)


def test_masks_silence_one_run_per_sample():
    x = np.ones((3, 8, 6), np.uint8)
    starts, widths = np.array([0, 5, 2]), np.array([2, 3, 0])
    out = mask(x, 1, starts, widths)
    expected = x.copy()
    expected[0, 0:2] = 0
    expected[1, 5:8] = 0
    assert np.array_equal(out, expected)
    out = mask(x, 2, starts, widths)
    expected = x.copy()
    expected[0, :, 0:2] = 0
    expected[1, :, 5:8] = 0
    assert np.array_equal(out, expected)
    # Random masks stay inside the sample and never add spikes.
    wide = Augment(time_mask=8, channel_mask=6)(x, np.random.default_rng(0))
    assert np.all(wide <= x) and wide.shape == x.shape


@pytest.mark.parametrize(
    "field, value",
    [("time_mask", -1), ("channel_mask", 2.0), ("blend", 1.5), ("blend", -0.1), ("time_stretch", 1.0), ("time_stretch", -0.1), ("time_stretch", True), ("time_shift", -1),
     ("time_shift", 1.5), ("spike_drop", 1.0), ("spike_drop", "0.1")],
)  # fmt: skip
def test_bad_augmentation_is_a_one_line_error_naming_it(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_cli_flags_reach_the_config_and_round_trip():
    args = build_parser().parse_args(
        ["train", "--time-stretch", "0.1", "--time-shift", "3", "--spike-drop", "0.2",
         "--blend", "0.5", "--time-mask", "4", "--channel-mask", "7"]
    )  # fmt: skip
    config = config_from_args(args, args.method)
    assert (config.time_stretch, config.time_shift, config.spike_drop) == (0.1, 3, 0.2)
    assert config.augment == Augment(3, 0.1, 3, 0.2, 0.5, 4, 7)
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_blend_aligns_centres_and_keeps_half_of_each():
    # Two single-channel "words": a block of 40 spikes per bin at bins 2-3, and one at 6-7.
    x = np.zeros((1, 10, 1), np.uint8)
    x[0, 2:4] = 40
    partner = np.zeros_like(x)
    partner[0, 6:8] = 40
    out = blend(x, partner, 1.0, np.random.default_rng(0))
    # The partner is moved 4 bins earlier onto x: all spikes stay in bins 2-3, about 40 each
    # (20 + 20 kept of 40 + 40, binomial sd ~6.3).
    assert out[0, :2].sum() == 0 and out[0, 4:].sum() == 0
    assert np.all(np.abs(out[0, 2:4].astype(int) - 40) < 6 * np.sqrt(80 * 0.25))
    # Probability 0: x itself.
    assert np.array_equal(blend(x, partner, 0.0, np.random.default_rng(0)), x)


def test_blend_partners_are_of_the_same_class_and_training_batches_use_them():
    labels = np.array([0, 1, 0, 2, 1, 0, 2, 2])
    members = class_members(labels)
    rng = np.random.default_rng(1)
    for _ in range(20):
        partners = same_class_partners(labels, members, rng)
        assert np.array_equal(labels[partners], labels)

    class Split:  # each sample all 50 x its class: a blend stays near it
        y = labels
        x = np.repeat(labels[:, None, None], 6, axis=1).repeat(3, axis=2).astype(np.uint8) * 50

    batches = list(training_batches(Split, 4, Augment(blend=1.0), np.random.default_rng(2)))
    assert len(batches) == 2
    for index, xb, yb in batches:
        assert np.array_equal(yb, labels[index])
        # Blending two rows of 50 c of the same class c gives counts near 50 c (sd of one
        # count: 5 c), and nothing for class 0.
        for row, c in zip(xb, yb):
            assert (row.sum() == 0) if c == 0 else np.all(np.abs(row.astype(int) - 50 * c) < 30 * c)
    off = list(training_batches(Split, 4, Augment(), np.random.default_rng(2)))
    assert all(np.array_equal(xb, Split.x[index]) for index, xb, _ in off)
