"""How a training run executes: determinism, random-generator state, batches on the device, and
a clean stop on Ctrl-C or SIGTERM (the batches themselves are drawn ahead by ``producers``).

On the CPU, training is deterministic (``torch.use_deterministic_algorithms``) and every generator
state is checkpointed (``rng_state``), so a resumed run ends bit-identical to an uninterrupted one.
On CUDA, speed comes first: cuDNN autotuning, and batches drawn ahead into pinned memory
(``producers.Prefetcher``), so the GPU does not wait for data. Device, precision and layout are
``hepaseg.model.device``.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import Stopped


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


def batch_to_device(host: tuple[torch.Tensor, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Host tensors (pinned for CUDA: an asynchronous copy) on ``device`` as float32."""
    return tuple(t.to(device, non_blocking=True).float() for t in host)


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
