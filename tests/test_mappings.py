"""The suite's guard against running out of memory mappings (tests/mappings.py)."""

import jax
import jax.numpy as jnp
import mappings
import pytest


def test_count_reads_this_process_table():
    used = mappings.count()
    if used is None:
        pytest.skip("no /proc/self/maps here")
    assert 0 < used <= mappings.limit()
    with open("/proc/self/maps") as f:
        assert abs(sum(1 for _ in f) - used) <= 8  # the same table (a thread may map meanwhile)


def test_make_room_clears_the_executables_only_above_its_share():
    if mappings.count() is None:
        pytest.skip("no /proc/self/maps here")
    f = jax.jit(lambda x: jnp.sin(x) + 1.0)
    f(jnp.ones(3))
    assert f._cache_size() == 1
    assert not mappings.make_room(share=1.0)  # never above the whole limit
    assert f._cache_size() == 1
    assert mappings.make_room(share=0.0)
    assert f._cache_size() == 0  # compiled again on its next call
    assert float(f(jnp.zeros(3))[0]) == 1.0
