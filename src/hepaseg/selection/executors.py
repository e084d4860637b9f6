"""Where run-to-budget tasks execute: this process, local worker processes, or a Ray cluster.

An executor runs ``fn(item, device, threads)`` for every item and yields the results as they
finish (not in submission order). ``device`` is a torch device string chosen by the executor
(``"cuda"`` in a worker process or Ray task that sees only its GPU, ``"cuda:N"`` in this
process, ``"cpu"``); ``threads`` is the CPU thread budget of one task. ``fn`` must be a module-level function (it is pickled by reference).

- ``LocalExecutor(devices)``: one slot per entry of ``devices``; a single slot runs in this
  process (no start-up cost); several slots run in one spawned worker process each (a ``SlotPool``),
  which keeps its device, and a task goes to a free slot, so a slot never runs two tasks at once.
- ``SlotPool(devices)``: those worker processes shared by several callers (threads): a free slot
  takes the queued task of the highest priority, so e.g. a study's selection rungs go before the
  chunks of its other trainings (``pipeline.study``). ``pool.executor(priority)`` is an executor on it.
- ``RayExecutor(address)``: one Ray task per item, with ``num_gpus=1`` when the cluster has GPUs,
  else ``num_cpus=cpus_per_task``. Ray is an optional extra (``pip install hepaseg[cluster]``).
"""

from __future__ import annotations

import heapq
import itertools
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, as_completed
from typing import Any, Protocol, TypeVar

from ..errors import InputError, Stopped

T = TypeVar("T")
R = TypeVar("R")
TaskFn = Callable[[T, str, int], R]


class Executor(Protocol):
    """Runs tasks, ``slots`` of them at a time; a context manager that closes itself."""

    slots: int

    def map_unordered(self, fn: TaskFn, items: Iterable[T]) -> Iterator[R]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


class _Closing:
    """``with executor:`` calls the subclass's ``close`` on the way out."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def local_devices(workers: int | None = None, device: str = "auto") -> list[str]:
    """One torch device per parallel task on this machine.

    Args:
        workers: parallel tasks; default one per GPU, or 1 on the CPU.
        device: ``auto`` (every visible GPU, else the CPU), ``cuda`` (GPUs, an error without) or
            ``cpu``. With more workers than GPUs, the GPUs are shared round-robin.
    """
    import torch

    if workers is not None and workers < 1:
        raise InputError(None, f"workers must be >= 1, got {workers}")
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(None, f"unknown device {device!r} (use auto, cpu or cuda)")
    gpus = torch.cuda.device_count() if device != "cpu" and torch.cuda.is_available() else 0
    if device == "cuda" and not gpus:
        raise InputError(None, "device 'cuda' requested but CUDA is not available (use --device cpu)")
    if gpus:
        return [f"cuda:{i % gpus}" for i in range(workers or gpus)]
    return ["cpu"] * (workers or 1)


def _worker_gpu(device: str) -> str | None:
    """The ``CUDA_VISIBLE_DEVICES`` entry of a ``cuda:N`` slot (None for the CPU)."""
    if not device.startswith("cuda"):
        return None
    index = int(device.partition(":")[2] or 0)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return visible.split(",")[index] if visible else str(index)


def _init_worker(gpu: str | None) -> None:
    """Worker initializer: see only the slot's GPU (as ``cuda``), and on Linux end with the driver
    (even on kill -9), so no orphan keeps training a run that a resumed selection trains again."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def worker_process(gpu: str | None = None) -> ProcessPoolExecutor:
    """One spawned worker process that sees only ``gpu`` (None: no GPU change) and ends with this
    process (``_init_worker``); shut it down (``with``) when done."""
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(gpu,))


def _slots_and_threads(devices: Sequence[str], threads: int | None) -> tuple[int, int]:
    """Slots (one per device entry) and CPU threads per task (default: the cores shared by the slots)."""
    if not devices:
        raise InputError(None, "local worker slots need at least one device")
    return len(devices), threads or max(1, (os.cpu_count() or 1) // len(devices))


class SlotPool(_Closing):
    """One spawned worker process per device entry (a slot), shared by callers in several threads.

    ``submit`` queues a task; a free slot takes the queued task of the lowest ``priority`` number
    (ties: the first queued), so a slot never runs two tasks at once and a task queued later with a
    higher priority goes before the waiting ones. Results are bit-identical wherever a task runs,
    given the same ``threads``.

    Args:
        devices: one torch device per slot; repeat ``"cpu"`` for several CPU processes.
        threads: CPU threads per task (default: the machine's cores shared by the slots).
    """

    def __init__(self, devices: Sequence[str], threads: int | None = None) -> None:
        self.slots, self.threads = _slots_and_threads(devices, threads)
        self._gpus = [_worker_gpu(d) for d in devices]
        self._workers: list[ProcessPoolExecutor] | None = None  # started by the first task
        self._lock = threading.RLock()  # a task that is done at once calls back under it
        self._queue: list[tuple[int, int, TaskFn, Any, Future]] = []
        self._order = itertools.count()
        self._free = list(range(self.slots))[::-1]

    def submit(self, fn: TaskFn, item: T, priority: int = 0) -> Future:
        """Queue ``fn(item, device, threads)``; the returned future holds its result."""
        future: Future = Future()
        with self._lock:
            heapq.heappush(self._queue, (priority, next(self._order), fn, item, future))
            self._dispatch()
        return future

    def map_unordered(self, fn: TaskFn, items: Iterable[T], priority: int = 0) -> Iterator[R]:
        """Run ``fn`` for every item and yield the results as they finish; leaving early (or an error)
        cancels the tasks that have not started."""
        futures = [self.submit(fn, item, priority) for item in items]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    def executor(self, priority: int = 0) -> Executor:
        """An ``Executor`` whose tasks run on this pool with ``priority``; closing it leaves the pool open."""
        return _PoolExecutor(self, priority)

    def _dispatch(self) -> None:
        """Start queued tasks on free slots (the lock held)."""
        if self._workers is None:  # one process per slot, which sees only the slot's GPU
            self._workers = [worker_process(gpu) for gpu in self._gpus]
        while self._free and self._queue:
            _, _, fn, item, future = heapq.heappop(self._queue)
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while queued
            slot = self._free.pop()
            device = "cpu" if self._gpus[slot] is None else "cuda"
            try:
                task = self._workers[slot].submit(fn, item, device, self.threads)
            except BaseException as exc:  # the pool is shut down or broken
                self._free.append(slot)
                future.set_exception(exc)
                continue
            task.add_done_callback(lambda task, slot=slot, future=future: self._finished(slot, future, task))

    def _finished(self, slot: int, future: Future, task: Future) -> None:
        """A slot's task ended: hand its outcome to the caller's future, then give the slot the next task."""
        with self._lock:
            self._free.append(slot)
            self._dispatch()
        if task.cancelled():
            future.set_exception(CancelledError())
        elif task.exception() is not None:
            future.set_exception(task.exception())
        else:
            future.set_result(task.result())

    def close(self) -> None:
        """Cancel the queued tasks, wait for the running ones and end the worker processes."""
        with self._lock:
            queued, self._queue = self._queue, []
            workers, self._workers = self._workers or [], []
        for *_, future in queued:
            future.cancel()
        for worker in workers:
            worker.shutdown(wait=True, cancel_futures=True)


class _PoolExecutor(_Closing):
    """An ``Executor`` view of a ``SlotPool`` at one priority (``SlotPool.executor``)."""

    def __init__(self, pool: SlotPool, priority: int) -> None:
        self.pool, self.priority, self.slots = pool, priority, pool.slots

    def map_unordered(self, fn: TaskFn, items: Iterable[T]) -> Iterator[R]:
        return self.pool.map_unordered(fn, items, self.priority)

    def close(self) -> None:
        """Nothing: the pool's owner closes it."""


class LocalExecutor(_Closing):
    """Tasks on this machine: one slot per device entry (e.g. ``["cuda:0", "cuda:1"]``).

    Args:
        devices: one torch device per slot; repeat ``"cpu"`` for several CPU processes.
        threads: CPU threads per task (default: the machine's cores shared by the slots).
    """

    def __init__(self, devices: Sequence[str], threads: int | None = None) -> None:
        self.devices = list(devices)
        self.slots, self.threads = _slots_and_threads(devices, threads)
        self._pool: SlotPool | None = None

    def map_unordered(self, fn: TaskFn, items: Iterable[T]) -> Iterator[R]:
        if self.slots == 1:
            for item in items:
                yield fn(item, self.devices[0], self.threads)
            return
        if self._pool is None:
            self._pool = SlotPool(self.devices, self.threads)
        yield from self._pool.map_unordered(fn, items)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(None, "the ray backend needs Ray: pip install 'hepaseg[cluster]'") from None
    return ray


class RayExecutor(_Closing):
    """Tasks on a Ray cluster (or a local Ray instance when ``address`` is None).

    Each task gets one GPU when the cluster has GPUs, else ``cpus_per_task`` CPUs. A task that
    dies with its node, or whose worker is stopped by SIGTERM (preemption: the run writes its
    checkpoint first), is retried by Ray up to ``MAX_RETRIES`` times; a run continues from its
    checkpoint, so a retry redoes at most the iterations since that checkpoint. Checkpoints must
    lie on storage every node sees.

    Args:
        address: ``"auto"``, ``"ray://host:10001"``, ... (``ray.init``'s address); ignored when
            Ray is already initialised in this process.
        cpus_per_task: CPUs (and torch threads) per task on a cluster without GPUs.
    """

    def __init__(self, address: str | None = None, cpus_per_task: int = 1) -> None:
        self._ray = _import_ray()
        self._owns_ray = not self._ray.is_initialized()
        if self._owns_ray:
            try:
                self._ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as exc:
                raise InputError(None, f"cannot reach the Ray cluster at {address!r}: {exc}") from exc
        resources = self._ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self.cpus_per_task = cpus_per_task
        self.slots = self.gpus or max(1, int(resources.get("CPU", 1)) // cpus_per_task)

    def map_unordered(self, fn: TaskFn, items: Iterable[T]) -> Iterator[R]:
        ray = self._ray
        options = {"max_retries": MAX_RETRIES, "retry_exceptions": [Preempted]}
        if self.gpus:
            remote, device = ray.remote(num_gpus=1, **options)(_preemptible), "cuda"
        else:
            remote, device = ray.remote(num_cpus=self.cpus_per_task, **options)(_preemptible), "cpu"
        refs = [remote.remote(fn, item, device, self.cpus_per_task) for item in items]
        try:
            while refs:
                done, refs = ray.wait(refs, num_returns=1)
                yield ray.get(done[0])
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._owns_ray:
            self._ray.shutdown()


MAX_RETRIES = 3  # per Ray task: node failures and preemptions (SIGTERM) together


class Preempted(Exception):
    """A Ray task stopped by a signal (a preempted node's SIGTERM) after its run's checkpoint; Ray retries it."""


def _preemptible(fn: TaskFn, item: T, device: str, threads: int) -> R:
    """Ray task: ``fn(item, device, threads)``; a stop by signal becomes ``Preempted`` (retried, the
    run continuing from the checkpoint it just wrote) instead of ending the selection."""
    try:
        return fn(item, device, threads)
    except Stopped as exc:
        raise Preempted(str(exc)) from exc


def make_executor(backend: str, workers: int | None = None, device: str = "auto", address: str | None = None,
                  threads: int | None = None) -> Executor:
    """The executor a command line asks for: ``local`` (``workers`` on ``device``) or ``ray``
    (``address``). ``threads``: CPU threads per task (local default: the cores shared by the
    workers; ray default 1, requested as the task's CPUs on a cluster without GPUs). On the CPU,
    results are bit-identical across executors only with the same ``threads``."""
    if threads is not None and threads < 1:
        raise InputError(None, f"threads must be >= 1, got {threads}")
    if backend == "local":
        return LocalExecutor(local_devices(workers, device), threads)
    if backend == "ray":
        return RayExecutor(address, threads or 1)
    raise InputError(None, f"unknown backend {backend!r} (use local or ray)")
