"""Where run-to-budget tasks execute: this process, local worker processes, or a Ray cluster.

An executor runs ``fn(item, device, threads)`` for every item and yields the results as they
finish (not in submission order). ``device`` is a torch device string chosen by the executor
(``"cuda"`` in a worker process or Ray task that sees only its GPU, ``"cuda:N"`` in this
process, ``"cpu"``); ``threads`` is the CPU thread budget of one task. ``fn`` must be a module-level function (it is pickled by reference).

- ``LocalExecutor(devices)``: one slot per entry of ``devices``; a single slot runs in this
  process (no start-up cost); several slots run in one spawned worker process each, which keeps
  its device, and a task goes to a free slot, so a slot never runs two tasks at once.
- ``RayExecutor(address)``: one Ray task per item, with ``num_gpus=1`` when the cluster has GPUs,
  else ``num_cpus=cpus_per_task``. Ray is an optional extra (``pip install hepaseg[cluster]``).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
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


class LocalExecutor(_Closing):
    """Tasks on this machine: one slot per device entry (e.g. ``["cuda:0", "cuda:1"]``).

    Args:
        devices: one torch device per slot; repeat ``"cpu"`` for several CPU processes.
        threads: CPU threads per task (default: the machine's cores shared by the slots).
    """

    def __init__(self, devices: Sequence[str], threads: int | None = None) -> None:
        if not devices:
            raise InputError(None, "local executor needs at least one device")
        self.devices = list(devices)
        self.slots = len(self.devices)
        self.threads = threads or max(1, (os.cpu_count() or 1) // self.slots)
        self._workers: list[ProcessPoolExecutor] = []

    def map_unordered(self, fn: TaskFn, items: Iterable[T]) -> Iterator[R]:
        if self.slots == 1:
            for item in items:
                yield fn(item, self.devices[0], self.threads)
            return
        gpus = [_worker_gpu(d) for d in self.devices]
        if not self._workers:  # one process per slot, which sees only the slot's GPU
            self._workers = [worker_process(gpu) for gpu in gpus]
        pending = list(items)[::-1]
        free = list(range(self.slots))[::-1]
        running: dict[Future, int] = {}
        try:
            while pending or running:
                while pending and free:
                    slot = free.pop()
                    device = "cpu" if gpus[slot] is None else "cuda"
                    running[self._workers[slot].submit(fn, pending.pop(), device, self.threads)] = slot
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    free.append(running.pop(future))
                    yield future.result()
        finally:
            for future in running:
                future.cancel()

    def close(self) -> None:
        for worker in self._workers:
            worker.shutdown(wait=True, cancel_futures=True)
        self._workers = []


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
