"""Data parallelism with ``jax.sharding``: the batch split over a mesh of devices, the
parameters and the optimiser state replicated on each.

Every training step sees the whole batch as one global array whose rows are spread over the
devices; the compiled step is the single-device program, partitioned by XLA (GSPMD): each device
runs the forward pass, the online traces or the backward pass on its rows, and the batch-mean
loss and gradient are summed across devices by the collective XLA inserts. The parameters come
out replicated, so every device applies the same update. This holds for BPTT and for every
online method alike, since both are a ``vmap`` over samples followed by a mean.

Across hosts (``jax.distributed``), each process runs the same program on the same data in the
same order (the same seed), builds the same global batch and places only its own devices' rows
(``jax.make_array_from_callback``); process 0 alone writes the run's files.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH_AXIS = "batch"
# The standard cluster environments under which a run starts `jax.distributed` itself:
# snnplast's own three variables (any launcher), Slurm with more than one task, Open MPI
# with more than one rank.
COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"
NUM_PROCESSES_ENV = "JAX_NUM_PROCESSES"
PROCESS_ID_ENV = "JAX_PROCESS_ID"


def _cluster_size() -> int:
    for name in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"):
        try:
            return int(os.environ.get(name, "1"))
        except ValueError:
            continue
    return 1


def initialize_distributed() -> bool:
    """Start ``jax.distributed`` when the process is one of several in a cluster environment.

    With ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0), ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID`` set, those are used; under Slurm (``SLURM_NTASKS`` > 1) or Open MPI
    (``OMPI_COMM_WORLD_SIZE`` > 1), JAX reads the cluster's own variables. Otherwise nothing
    happens. Calling it again is harmless.

    **Returns:** whether this process is part of a multi-process run.
    """
    if jax.distributed.is_initialized():
        return jax.process_count() > 1
    if os.environ.get(COORDINATOR_ENV):
        missing = [n for n in (NUM_PROCESSES_ENV, PROCESS_ID_ENV) if not os.environ.get(n)]
        if missing:
            raise ValueError(
                f"{COORDINATOR_ENV} is set but {', '.join(missing)} is not; a multi-host run "
                f"needs all of {COORDINATOR_ENV}, {NUM_PROCESSES_ENV}, {PROCESS_ID_ENV}"
            )
        jax.distributed.initialize(
            coordinator_address=os.environ[COORDINATOR_ENV],
            num_processes=int(os.environ[NUM_PROCESSES_ENV]),
            process_id=int(os.environ[PROCESS_ID_ENV]),
        )
    elif _cluster_size() > 1:
        jax.distributed.initialize()
    else:
        return False
    return jax.process_count() > 1


def check_devices(devices) -> int | None:
    """Validate a requested device count (None: all); return it."""
    if devices is None:
        return None
    if isinstance(devices, bool) or not isinstance(devices, int | np.integer) or devices < 1:
        raise ValueError(f"devices must be an integer >= 1 (or None for all), got {devices!r}")
    return int(devices)


class DataParallel:
    """A one-axis mesh over `devices` of the run's devices, and how arrays are placed on it.

    **Arguments:**

    - `devices`: how many devices to use: on one host the first `devices` local ones; across
      hosts, all of them (each host contributes its local devices). None: all.
    """

    def __init__(self, devices: int | None = None):
        devices = check_devices(devices)
        available = jax.devices()
        if jax.process_count() > 1:
            if devices not in (None, len(available)):
                raise ValueError(
                    f"devices={devices}: a multi-host run uses all {len(available)} devices of "
                    "its hosts; leave --devices out"
                )
            chosen = available
        else:
            if devices is not None and devices > len(available):
                raise ValueError(
                    f"devices={devices}, but this machine has {len(available)} "
                    f"{available[0].platform} device(s); allowed 1..{len(available)}"
                )
            chosen = available[: devices or len(available)]
        self.mesh = Mesh(np.array(chosen), (BATCH_AXIS,))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.batched = NamedSharding(self.mesh, PartitionSpec(BATCH_AXIS))

    @property
    def size(self) -> int:
        return self.mesh.size

    def check_batch(self, batch: int, what: str = "batch") -> None:
        if batch % self.size:
            raise ValueError(
                f"{what} {batch} does not split evenly over {self.size} devices; use a "
                f"multiple of {self.size} (or fewer devices with --devices)"
            )

    def replicate(self, tree):
        """Every array leaf of `tree` copied whole to every device of the mesh."""
        return jax.tree_util.tree_map(
            lambda a: self._place(np.asarray(a), self.replicated) if _is_array(a) else a, tree
        )

    def shard(self, array: np.ndarray) -> jax.Array:
        """A host array split along its first axis over the mesh (the same array on every host)."""
        return self._place(np.asarray(array), self.batched)

    @staticmethod
    def _place(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
        # Each process supplies the pieces of its own devices; on one host that is all of them.
        return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def _is_array(leaf) -> bool:
    return isinstance(leaf, jax.Array | np.ndarray)


def is_writer() -> bool:
    """Whether this process writes the run's files (process 0 of a multi-host run)."""
    return jax.process_index() == 0
