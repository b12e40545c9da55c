import itertools

import jax
import mappings
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")


def pytest_runtest_teardown(item):
    # A process that runs many tests would otherwise run out of memory mappings for XLA's
    # executables, and jaxlib segfaults then (tests/mappings.py).
    mappings.make_room()


@pytest.fixture
def getkey():
    counter = itertools.count()
    base = jax.random.PRNGKey(1234)
    return lambda: jax.random.fold_in(base, next(counter))


@pytest.fixture
def x64():
    """Run a test in float64: where exactness is claimed, compare in double precision."""
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", False)


@pytest.fixture(scope="module")
def synth_folder(tmp_path_factory):
    """A tiny procedural stand-in (3 training and 1 test sample per class) in SHD's layout:
    its folder, and the data set loaded from it at 12 bins."""
    from snnplast import data

    folder = tmp_path_factory.mktemp("shd")
    data.make_synth_shd(folder, n_per_class_train=3, n_per_class_test=1)
    return folder, data.load_dataset(folder, n_bins=12, progress=False)
