import itertools

import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def getkey():
    counter = itertools.count()
    base = jax.random.PRNGKey(1234)
    return lambda: jax.random.fold_in(base, next(counter))


@pytest.fixture
def x64():
    """Run a test in float64: where exactness is claimed, compare in double precision.

    XLA's optimisations are off meanwhile: these tests compare numbers on problems a few
    elements wide, whose cost is almost all compilation (about a third less with them off);
    the float32 tests, and every test that measures compiled memory, keep them on.
    """
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_disable_most_optimizations", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", False)
        jax.config.update("jax_disable_most_optimizations", False)
