"""Data parallelism: the batch split over two (forced) host devices gives the single-device
gradients and, after training, the single-device parameters, to float tolerance, for BPTT and
the online methods. Runs in a subprocess: the device count is fixed when JAX starts."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("sharded_run.py")
# The default run checks the gradient of BPTT and e-prop and trains with BPTT; the slow run
# covers every online method the trainer can build a network for, and trains with e-prop too.
FAST = (("bptt", "diagonal"), ("bptt",))
FULL = (("bptt", "exact", "diagonal", "random-k:4", "immediate"), ("bptt", "diagonal"))


@functools.cache
def _results(gradient_methods, fit_methods):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, str(SCRIPT), ",".join(gradient_methods),
                          ",".join(fit_methods)], env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _check_gradient(r):
    assert r["devices_holding_the_batch"] == [1, 2]
    # float32 sums in another order: a few ulps of the gradient's scale.
    assert r["grad_max_diff"] <= 1e-6 * r["grad_scale"] + 1e-7, r
    assert abs(r["loss"][0] - r["loss"][1]) <= 1e-6 * abs(r["loss"][0]), r


def _check_training(r):
    assert r["summary_devices"] == [1, 2]
    assert r["param_max_diff"] <= 1e-5 * r["param_scale"], r
    assert r["test_accuracy"][0] == r["test_accuracy"][1], r


@pytest.mark.parametrize("method", FAST[0])
def test_sharded_gradient_equals_single_device(method):
    _check_gradient(_results(*FAST)[method])


@pytest.mark.parametrize("method", FAST[1])
def test_sharded_training_equals_single_device(method):
    _check_training(_results(*FAST)[method])


@pytest.mark.slow
@pytest.mark.parametrize("method", FULL[0])
def test_sharded_gradient_every_method(method):
    _check_gradient(_results(*FULL)[method])


@pytest.mark.slow
@pytest.mark.parametrize("method", FULL[1])
def test_sharded_training_every_method(method):
    _check_training(_results(*FULL)[method])
