"""How a training run executes: determinism, random-generator state, background batches, and
a clean stop on Ctrl-C or SIGTERM.

On the CPU, training is deterministic (``torch.use_deterministic_algorithms``) and every generator
state is checkpointed (``rng_state``), so a resumed run ends bit-identical to an uninterrupted one.
On CUDA, speed comes first: cuDNN autotuning, and batches drawn by a background thread into pinned
memory, so the GPU does not wait for data. Device, precision and layout are ``hepaseg.model.device``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import Stopped
from .sampling import Batch, PatchSampler


@contextlib.contextmanager
def execution_mode(device: torch.device) -> Iterator[None]:
    """Deterministic algorithms on the CPU; cuDNN autotuning on CUDA. Restores the previous settings.

    Deterministic mode's debugging aid of filling every new tensor with NaN is turned off: the
    results do not depend on it (each op writes its whole output) and on the demo preset it cost
    about a tenth of a CPU training step (docs/benchmarks.md, "CPU training step").
    """
    deterministic = torch.are_deterministic_algorithms_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    benchmark = torch.backends.cudnn.benchmark
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
        torch.utils.deterministic.fill_uninitialized_memory = False
    else:
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.utils.deterministic.fill_uninitialized_memory = fill
        torch.backends.cudnn.benchmark = benchmark


HostBatch = tuple[Batch, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # + image, target, weight


def batch_to_device(host: tuple[torch.Tensor, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Host tensors (pinned for CUDA: an asynchronous copy) on ``device`` as float32."""
    return tuple(t.to(device, non_blocking=True).float() for t in host)


class Prefetcher:
    """Draws batches from a sampler in a background thread, ``depth`` batches ahead.

    The sampler is used by this thread only, in order, so the batch sequence is the same as
    drawing them in the main thread. Each batch carries the sampler state after it: checkpoint
    that state for the last batch consumed, not ``sampler.state()``. With ``pin`` (for CUDA) the
    thread also copies the arrays into pinned host memory, ready for an asynchronous upload.
    """

    def __init__(self, sampler: PatchSampler, batch_size: int, pin: bool = False, depth: int = 3) -> None:
        self._sampler = sampler
        self._batch_size = batch_size
        self._pin = pin
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="hepaseg-batches", daemon=True)

    def __enter__(self) -> Prefetcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join()

    def get(self) -> HostBatch:
        """The next batch and its (image, target, weight) host tensors; re-raises a producer error."""
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def _host_batch(self) -> HostBatch:
        batch = self._sampler.next_batch(self._batch_size)
        host = tuple(torch.from_numpy(a) for a in (batch.image, batch.target, batch.weight))
        if self._pin:
            host = tuple(t.pin_memory() for t in host)
        return batch, host  # type: ignore[return-value]

    def _produce(self) -> None:
        while not self._stop.is_set():
            try:
                item: HostBatch | BaseException = self._host_batch()
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


def state_copy(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A host copy of the module's state (parameters and buffers)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and Python's ``random`` (the sampler seeds each batch itself:
    ``sampling.batch_rng``)."""
    torch.manual_seed(seed)
    random.seed(seed)


def rng_state() -> dict[str, Any]:
    """The torch (CPU and every CUDA device) and Python generator states."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned (CUDA states only where devices are present)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class StopRequest:
    """Set by the first Ctrl-C or SIGTERM: ``signum`` of the signal, None while training goes on."""

    signum: int | None = None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """The first SIGINT / SIGTERM asks the loop to stop after the iteration (it then writes its
    checkpoint); a second one raises ``Stopped`` at once. Outside the main thread (where
    Python delivers no signals) the request never comes. Restores the previous handlers."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: Any) -> None:
        if request.signum is not None:
            raise Stopped(signum, "aborted at once (the last checkpoint stands)")
        request.signum = signum
        # os.write, not print: a print here could re-enter one that the signal interrupted
        os.write(2, f"\n{signal.Signals(signum).name}: stopping after this iteration (again to abort at once)\n"
                 .encode())

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
