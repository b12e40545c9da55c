"""Room in the process's table of memory mappings for the executables XLA compiles.

XLA's CPU compiler keeps each executable it builds in memory mappings of its own, and JAX keeps
every executable a process compiles in its caches; an eager ``lax.scan`` of a closure made per
call (as ``online_loss_and_grad`` makes) compiles again on every call. A process that runs
many tests reaches the kernel's limit on mappings (``vm.max_map_count``, 65530 by default);
jaxlib 0.10.2's compiler then logs "LLVM compilation error: Cannot allocate memory" and
segfaults or aborts instead of raising (``pytest -m "" tests/test_blocked.py`` crashed so at
``test_whole_sequence_recomputed_equals_steps[izhikevich-...]``, its 143rd test, holding
65199 mappings and 4.7 GB resident of 23). Clearing JAX's caches gives the mappings back.
"""

import jax

# The kernel's default, where /proc does not say (not Linux: no such limit to mind).
DEFAULT_LIMIT = 65530

# The share of the limit a process may use before the caches are cleared: one test of the slow
# set of tests/test_blocked.py adds 456 mappings on average, 2132 at most (linear_attention).
SHARE = 0.5


def count() -> int | None:
    """The mappings this process holds now, or ``None`` where ``/proc`` does not list them."""
    try:
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


def limit() -> int:
    """The kernel's limit on one process's mappings (``vm.max_map_count``)."""
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except (OSError, ValueError):
        return DEFAULT_LIMIT


def make_room(share: float = SHARE) -> bool:
    """Clear JAX's compilation caches when this process holds more than ``share`` of the
    limit's mappings.

    **Returns:** whether the caches were cleared.
    """
    used = count()
    if used is None or used <= share * limit():
        return False
    jax.clear_caches()
    return True
