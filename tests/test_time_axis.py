"""The word time axis: each sample's word, found from its spike rate, stretched over the bins."""

import json

import numpy as np
import pytest

from snnplast.data import bin_events, bin_samples, load_dataset, make_synth_shd, word_span
from snnplast.train import TrainConfig, fit
from snnplast.train._evaluate import _load, _run_binning, evaluate

C, DURATION = 700, 1.4


def _utterance(rng, start, length, *, high_band=True):
    """Spontaneous spikes on every channel over the whole 1.4 s, and a dense burst on the
    channels tuned below ~5 kHz (200-699) from `start` for `length` seconds."""
    n_floor = 3000
    times = [rng.uniform(0, DURATION, n_floor)]
    units = [rng.integers(0, C, n_floor)]
    times.append(rng.uniform(start, start + length, 6000))
    units.append(rng.integers(200, C, 6000))
    if high_band:  # a fricative above 5 kHz before the vowel: not part of what is looked at
        times.append(rng.uniform(max(0.0, start - 0.15), start, 2000))
        units.append(rng.integers(0, 200, 2000))
    return np.concatenate(times), np.concatenate(units)


def test_word_span_finds_the_burst_in_the_low_band():
    rng = np.random.default_rng(0)
    times, units = _utterance(rng, 0.4, 0.3)
    start, end = word_span(times, units, C, DURATION)
    # 10 ms frames smoothed over 50 ms: the edges are found to within a few frames.
    assert abs(start - 0.4) <= 0.03 and abs(end - 0.7) <= 0.03
    # Spikes above 5 kHz (channels 0-199) do not move the word: a telephone-band recording
    # of the same word, which has none there, gives the same span.
    low = units >= 200
    assert word_span(times[low], units[low], C, DURATION) == (start, end)


def test_silence_spans_the_whole_window():
    assert word_span(np.array([]), np.array([], int), C, DURATION) == (0.0, DURATION)
    rng = np.random.default_rng(1)
    # A constant rate has no word in it: nothing rises above the floor.
    times = (np.arange(1400) + 0.5) / 1000  # ten spikes in every 10 ms frame
    assert word_span(times, rng.integers(200, C, times.size), C, DURATION) == (0.0, DURATION)


def _burst_bins(frame):
    """First and last bin where the low band fires at more than half its peak."""
    low = frame[:, 40:].sum(1)
    above = np.flatnonzero(low > 0.5 * low.max())
    return above[0], above[-1]


def test_the_same_word_later_and_slower_bins_alike():
    rng = np.random.default_rng(2)
    times, units = _utterance(rng, 0.2, 0.3)
    word = (times > 0.1) & (times < 0.6)  # the word and a little floor around it
    times, units = times[word], units[word]
    base = bin_events(times, units, 40, DURATION, C, 5, time_axis="word")
    # 0.4 s later: the same frame (the shift is a whole number of 10 ms detection frames).
    later = bin_events(times + 0.4, units, 40, DURATION, C, 5, time_axis="word")
    assert np.array_equal(base, later)
    # Twice as slow: the word fills the same bins (its edges are found to within a 10 ms frame
    # of the slower clock, so the bins' edges move by a fraction of a bin).
    slow = 0.1 + 2 * (times - 0.1)
    slower = bin_events(slow, units, 40, DURATION, C, 5, time_axis="word")
    first, last = _burst_bins(base)
    # The word's 32 bins begin after a margin of an eighth of their length, 4 bins: its edges
    # are found to within two 10 ms frames (the smoothing), here a little less than two bins.
    assert 4 <= first <= 6 and 33 <= last <= 35
    slower_first, slower_last = _burst_bins(slower)
    assert abs(slower_first - first) <= 1 and abs(slower_last - last) <= 1
    assert abs(base.sum() / slower.sum() - 1) < 0.05
    # On the absolute axis these are three different frames, the word in different bins.
    absolute = [bin_events(t, units, 40, DURATION, C, 5) for t in (times, times + 0.4, slow)]
    assert not np.array_equal(absolute[0], absolute[1])
    assert _burst_bins(absolute[2])[1] - _burst_bins(absolute[0])[1] > 5
    assert np.array_equal(bin_samples([times], [units], 40, DURATION, C, 5, time_axis="word")[0],
                          base)  # fmt: skip


@pytest.mark.parametrize("bad", ["words", None, 1])
def test_unknown_time_axis_is_one_line(bad, tmp_path):
    with pytest.raises(ValueError, match="time_axis must be one of .*absolute.*word"):
        bin_events(np.array([0.1]), np.array([3]), time_axis=bad)
    with pytest.raises(ValueError, match="time_axis must be one of"):
        TrainConfig(time_axis=bad)
    with pytest.raises(ValueError, match="time_axis must be one of"):
        load_dataset("synth", time_axis=bad, cache_dir=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())  # refused before anything was made


def test_evaluate_reads_the_runs_time_axis(tmp_path):
    folder = tmp_path / "shd"
    make_synth_shd(folder, n_per_class_train=1, n_per_class_test=1)
    cache = tmp_path / "cache"
    run = tmp_path / "run"
    run.mkdir()
    for config, expected in (({"n_bins": 20, "time_axis": "word"}, "word"), ({"n_bins": 20}, "absolute")):
        # A run from before the option has no time_axis in its config: it binned by absolute time.
        (run / "summary.json").write_text(json.dumps({"config": config, "model": {"n_in": 140}}))
        assert _run_binning(run) == (20, 5, expected)
    split, *_ = _load(folder, None, 20, 5, "word", cache, False)
    word = load_dataset(folder, n_bins=20, time_axis="word", cache_dir=cache, progress=False)
    absolute = load_dataset(folder, n_bins=20, cache_dir=cache, progress=False)
    assert np.array_equal(split.x, word.test.x)
    assert not np.array_equal(word.test.x, absolute.test.x)


@pytest.mark.slow
def test_evaluate_bins_as_the_run_did(tmp_path):
    folder = tmp_path / "shd"
    make_synth_shd(folder, n_per_class_train=3, n_per_class_test=1)
    cache = tmp_path / "cache"
    word = load_dataset(folder, n_bins=20, time_axis="word", cache_dir=cache, progress=False)
    absolute = load_dataset(folder, n_bins=20, cache_dir=cache, progress=False)
    assert not np.array_equal(word.test.x, absolute.test.x)
    config = TrainConfig(model="lif", hidden=8, epochs=1, batch=16, n_bins=20, time_axis="word")
    summary = fit(config, word, tmp_path / "run", progress=False)
    result = evaluate(tmp_path / "run", folder, out=tmp_path / "e", cache_dir=cache,
                      progress=False)  # fmt: skip
    assert result["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-9)
    assert summary["config"]["time_axis"] == "word"
