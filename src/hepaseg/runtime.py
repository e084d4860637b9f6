"""Where and how training runs: device choice, determinism, compilation, background batches.

On the CPU, training is deterministic (``torch.use_deterministic_algorithms``), so a resumed run
ends bit-identical to an uninterrupted one; bf16 autocast (``train.mixed_precision``) runs there
only on CPUs with bf16 instructions (``native_bf16``), where it is about twice as fast. On CUDA,
speed comes first: bf16 autocast, ``torch.compile`` where it works, cuDNN autotuning, and batches
drawn by a background thread into pinned memory, so the GPU does not wait for data. Channels-last
3D tensors (a config switch) help on both.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator

import numpy as np
import torch

from .errors import InputError
from .sampling import Batch, PatchSampler


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> CUDA if available, else CPU; ``cpu``; ``cuda`` / ``cuda:N`` (InputError if absent)."""
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(None, f"device {name!r} requested but CUDA is not available (use --device cpu)")
        return torch.device(name)
    raise InputError(None, f"unknown device {name!r} (use auto, cpu or cuda)")


@contextlib.contextmanager
def execution_mode(device: torch.device) -> Iterator[None]:
    """Deterministic algorithms on the CPU; cuDNN autotuning on CUDA. Restores the previous settings."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    benchmark = torch.backends.cudnn.benchmark
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    else:
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.backends.cudnn.benchmark = benchmark


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast pays on ``device``: CUDA with bf16 support, or a CPU with bf16 instructions.

    On the CPU it looks for AVX512-BF16 or AMX-BF16 in ``/proc/cpuinfo`` (Linux); elsewhere, and on
    CPUs that would emulate bf16 (slower than float32), the answer is False.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def memory_format(channels_last: bool) -> torch.memory_format:
    """Channels-last 3D when asked (faster on CUDA and on x86 CPUs); the default layout otherwise."""
    return torch.channels_last_3d if channels_last else torch.contiguous_format


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


def maybe_compile(net: torch.nn.Module, enabled: bool, device: torch.device) -> torch.nn.Module:
    """``torch.compile(net)`` on CUDA when enabled; ``net`` itself otherwise or if compile is missing."""
    if not enabled or device.type != "cuda" or not hasattr(torch, "compile"):
        return net
    return torch.compile(net)  # compilation errors surface at the first call; the caller falls back


def state_copy(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A host copy of the module's state (parameters and buffers)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch (CPU and CUDA) and Python's ``random``; return the sampler's numpy Generator."""
    import random

    torch.manual_seed(seed)
    random.seed(seed)
    return np.random.default_rng(seed)
