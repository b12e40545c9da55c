"""A small pool of worker processes for CPU-bound data preparation.

Why not `multiprocessing`: its "spawn" start method re-imports the caller's main script in every
worker, which fails for a script without an ``if __name__ == "__main__"`` guard, and "fork" is
unsafe once JAX has started its threads. These workers are fresh interpreters that import this
module and run its loop; they exchange length-prefixed pickles with the parent over
their stdin and stdout, and import nothing of the caller's.

A task is ``(function, args)`` with a module-level `function`; results come back in task order.
"""

from __future__ import annotations

import os
import pickle
import selectors
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any

_HEADER = struct.Struct("<Q")


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    return pickle.loads(stream.read(size))


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    # One thread and the CPU per worker: a worker per core is what uses the machine, and no
    # worker may claim an accelerator the parent is using.
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    env["SNNPLAST_WORKER"] = "1"
    return env


class _Queue:
    """Pending tasks by group: a worker stays with its group, so per-group set-up (a transfer
    matrix) is paid once; a free worker takes an untouched group, else helps the largest one."""

    def __init__(self, groups: Sequence[Hashable]):
        self._pending: dict[Hashable, deque[int]] = {}
        for i, group in enumerate(groups):
            self._pending.setdefault(group, deque()).append(i)
        self._last: dict[int, Hashable] = {}

    def take(self, worker: int) -> int | None:
        mine = self._last.get(worker)
        if mine is not None and self._pending.get(mine):
            return self._pending[mine].popleft()
        taken = set(self._last.values())
        for group, queue in self._pending.items():
            if queue and group not in taken:
                self._last[worker] = group
                return queue.popleft()
        group = max(self._pending, key=lambda g: len(self._pending[g]))
        if not self._pending[group]:
            return None
        # Help from the back, so the group's own worker keeps going from the front.
        self._last[worker] = group
        return self._pending[group].pop()


def run_tasks(
    tasks: Sequence[tuple[Callable, tuple]],
    workers: int,
    on_result: Callable[[int, Any], None] | None = None,
    groups: Sequence[Hashable] | None = None,
) -> list[Any]:
    """Run `tasks` on `workers` fresh processes, handing out the next task as each one finishes.

    **Arguments:**

    - `tasks`: ``(function, args)`` pairs; `function` must be importable by module and name.
    - `workers`: number of processes (at most one per task is started).
    - `on_result`: called as ``on_result(task_index, result)`` as results arrive (for progress).
    - `groups`: one key per task; tasks of a group go to the same worker where possible (by
      default every task is its own group, handed out in order).

    **Returns:** the results, in task order. A task's exception is re-raised here, after the
    workers are stopped.
    """
    results: list[Any] = [None] * len(tasks)
    if not tasks:
        return results
    procs = [
        subprocess.Popen(
            # Not `-m`: the package's __init__ imports this module first, and runpy would then
            # run a second copy of it (with a RuntimeWarning on every worker's stderr).
            [sys.executable, "-c", f"from {__name__} import _main; _main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_worker_env(),
        )
        for _ in range(min(workers, len(tasks)))
    ]
    selector = selectors.DefaultSelector()
    queue = _Queue(range(len(tasks)) if groups is None else groups)
    running: dict[int, int] = {}  # pid -> task index

    def hand_out(proc) -> bool:
        index = queue.take(proc.pid)
        if index is None:
            return False
        running[proc.pid] = index
        _send(proc.stdin, tasks[index])
        return True

    try:
        for proc in procs:
            selector.register(proc.stdout, selectors.EVENT_READ, proc)
            hand_out(proc)
        while running:
            for key, _ in selector.select():
                proc = key.data
                reply = _receive(proc.stdout)
                if reply is None:
                    raise RuntimeError(
                        f"a data worker (pid {proc.pid}) stopped unexpectedly "
                        f"(exit code {proc.wait()}); out of memory?"
                    )
                ok, value = reply
                if not ok:
                    raise value
                index = running.pop(proc.pid)
                results[index] = value
                if on_result is not None:
                    on_result(index, value)
                if not hand_out(proc):
                    selector.unregister(proc.stdout)
    except BaseException:
        # Nothing more is wanted from any worker: stop them now rather than let them finish.
        for proc in procs:
            proc.kill()
        raise
    finally:
        selector.close()
        for proc in procs:
            try:
                proc.stdin.close()
            except OSError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    return results


def _main() -> None:
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    inbox = sys.stdin.buffer
    outbox = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    while True:
        task = _receive(inbox)
        if task is None:
            return
        function, args = task
        try:
            reply = (True, function(*args))
        except Exception as e:  # noqa: BLE001 -- any failure goes back to the parent
            reply = (False, e)
        try:
            _send(outbox, reply)
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            _send(outbox, (False, RuntimeError(f"unpicklable result or error: {e}")))


if __name__ == "__main__":
    _main()
