"""Training batches drawn ahead of the training loop by one or more producers (``Prefetcher``).

Batch ``i`` is a function of the run's seed and ``i`` alone (``sampling.PatchSampler.batch``), so
producers may draw batches in any order: with ``N`` producers, producer ``k`` draws batches
``start + k, start + k + N, ...`` and the consumer takes them in index order, one from each
producer in turn. The sequence is the same for every ``N``.

One producer is a background thread. Several are spawned processes, because the sampler's weight
mask (scipy's distance transform) holds the GIL: in a short run on a shared 2-core box, two
threads made 1.3 times the paper preset's batches of one, two processes 1.9 times
(docs/training.md). Each process builds its own sampler from the prepared cases (memory-mapped
``.npy`` files, shared through the page cache) and writes each batch into one of its ``depth``
slots of shared memory (torch's shared tensors: the segments are unlinked at once, so no name can
outlive the processes); the queues carry only the index, the slot and the augmentation parameters.
The consumer copies a slot into its own (pinned, for CUDA) tensors and hands the slot back.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import threading
import traceback
from typing import Any

import torch
import torch.multiprocessing as mp

from .sampling import Batch, PatchSampler

HostBatch = tuple[Batch, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # + image, target, weight
POLL_S = 0.2  # how often a waiting side checks whether the other one still runs


def producer_count(setting: int, device: torch.device) -> int:
    """The batch producers of a run: ``setting`` (``train.batch_producers``) where > 0; for 0, one on
    the CPU (its cores train) and a quarter of the usable cores, 1 to 4, on a GPU."""
    if setting > 0:
        return setting
    if device.type == "cpu":
        return 1
    return max(1, min(4, len(os.sched_getaffinity(0)) // 4))


def _host_tensors(batch: Batch, pin: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch's (image, target, weight) as host tensors, copied into pinned memory with ``pin``."""
    host = tuple(torch.from_numpy(a) for a in (batch.image, batch.target, batch.weight))
    return tuple(t.pin_memory() for t in host) if pin else host  # type: ignore[return-value]


class Prefetcher:
    """Batches ``sampler.state()``, ``sampler.state() + 1``, ... drawn ahead by ``producers`` producers.

    Each producer keeps up to ``depth`` batches ready. The sampler itself is not changed: each batch
    carries the sampler state after it (``Batch.sampler_state``); checkpoint that of the last batch
    consumed. With ``pin`` (for CUDA) the host tensors are in pinned memory, ready for an
    asynchronous upload. A producer's error is raised by ``get``. Use it as a context manager: leaving
    it stops the producers (and, for several, ends their processes and frees their memory).
    """

    def __init__(self, sampler: PatchSampler, batch_size: int, pin: bool = False, depth: int = 3,
                 producers: int = 1) -> None:
        if producers < 1:
            raise ValueError(f"producers must be >= 1, got {producers}")
        self._impl = (_ThreadProducer(sampler, batch_size, pin, depth) if producers == 1
                      else _ProcessProducers(sampler, batch_size, pin, depth, producers))

    def __enter__(self) -> Prefetcher:
        self._impl.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._impl.close()

    def get(self) -> HostBatch:
        """The next batch and its (image, target, weight) host tensors; re-raises a producer error."""
        return self._impl.get()


class _ThreadProducer:
    """One producer: a background thread of this process, feeding a queue of ``depth`` batches."""

    def __init__(self, sampler: PatchSampler, batch_size: int, pin: bool, depth: int) -> None:
        self._sampler, self._batch_size, self._pin = sampler, batch_size, pin
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="hepaseg-batches", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join()

    def get(self) -> HostBatch:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def _produce(self) -> None:
        index = self._sampler.state()
        while not self._stop.is_set():
            try:
                batch = self._sampler.batch(index, self._batch_size)
                item: HostBatch | BaseException = (batch, _host_tensors(batch, self._pin))
            except BaseException as exc:  # handed to the consumer
                item = exc
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return
            index += 1


class _ProcessProducers:
    """``producers`` spawned processes, each with ``depth`` shared-memory slots of one batch."""

    def __init__(self, sampler: PatchSampler, batch_size: int, pin: bool, depth: int, producers: int) -> None:
        ctx = mp.get_context("spawn")
        shapes = [(batch_size, 1, *sampler.input_size), (batch_size, 1, *sampler.output_size),
                  (batch_size, 1, *sampler.output_size)]
        dtypes = (torch.float32, torch.uint8, torch.uint8)
        self._slots = [[tuple(torch.empty(s, dtype=d).share_memory_() for s, d in zip(shapes, dtypes))
                        for _ in range(depth)] for _ in range(producers)]
        self._ready = [ctx.Queue() for _ in range(producers)]
        self._free = [ctx.Queue() for _ in range(producers)]
        self._stop = ctx.Event()
        start = sampler.state()
        self._procs = [ctx.Process(target=_produce, name=f"hepaseg-batches-{k}", daemon=True,
                                   args=(sampler.arguments, start + k, producers, batch_size, self._slots[k],
                                         self._ready[k], self._free[k], self._stop))
                       for k in range(producers)]
        self._pin, self._next, self._start = pin, start, start
        self._failed: BaseException | None = None

    def start(self) -> None:
        for k, proc in enumerate(self._procs):
            for slot in range(len(self._slots[k])):
                self._free[k].put(slot)
            proc.start()

    def close(self) -> None:
        """Stop every producer and end its process (terminated if it does not end within 10 s)."""
        self._stop.set()
        for proc in self._procs:
            if proc.pid is not None:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.terminate()
                    proc.join()
        for q in self._ready + self._free:
            q.close()
            q.cancel_join_thread()  # what is left in the queues is not needed
        self._slots = []

    def get(self) -> HostBatch:
        if self._failed is not None:
            raise self._failed
        k = (self._next - self._start) % len(self._procs)
        item = self._receive(k)
        if isinstance(item, BaseException):
            self._failed = item
            raise item
        index, slot, augment = item
        host = tuple(t.pin_memory() if self._pin else t.clone() for t in self._slots[k][slot])
        self._free[k].put(slot)
        self._next += 1
        image, target, weight = (t.numpy() for t in host)
        return Batch(image, target, weight, augment, index), host  # type: ignore[return-value]

    def _receive(self, k: int) -> Any:
        """The next item of producer ``k``; RuntimeError if its process ended without one."""
        proc = self._procs[k]
        while True:
            try:
                return self._ready[k].get(timeout=POLL_S)
            except queue.Empty:
                if not proc.is_alive():
                    with contextlib.suppress(queue.Empty):
                        return self._ready[k].get(timeout=POLL_S)
                    return RuntimeError(f"batch producer {k} ended without a batch (exit code {proc.exitcode})")


def _produce(arguments: tuple, first: int, step: int, batch_size: int, slots: list[tuple[torch.Tensor, ...]],
             ready: Any, free: Any, stop: Any) -> None:
    """A producer process: batches ``first``, ``first + step``, ... into free ``slots``, announced on
    ``ready`` as (index, slot, augmentation parameters); an error is announced instead, and ends it.
    It ends when ``stop`` is set or its parent has gone. Ctrl-C is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = mp.parent_process()
    try:
        sampler = PatchSampler(*arguments)
        index = first
        while (slot := _free_slot(free, stop, parent)) is not None:
            batch = sampler.batch(index, batch_size)
            for tensor, array in zip(slots[slot], (batch.image, batch.target, batch.weight)):
                tensor.numpy()[...] = array
            ready.put((index, slot, batch.augment))
            index += step
    except BaseException as exc:  # handed to the consumer
        ready.put(_sendable(exc))


def _free_slot(free: Any, stop: Any, parent: Any) -> int | None:
    """The next free slot, or None once ``stop`` is set or the ``parent`` process has ended."""
    while not stop.is_set() and (parent is None or parent.is_alive()):
        with contextlib.suppress(queue.Empty):
            return free.get(timeout=POLL_S)
    return None


def _sendable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError with its traceback's text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any pickling failure
        return RuntimeError("batch producer failed:\n" + "".join(traceback.format_exception(exc)))
