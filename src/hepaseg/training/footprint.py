"""What one training step of a configuration costs, measured: seconds and peak memory.

``measure_step`` times optimisation steps on random patches (``feasibility.seconds_per_step``) and
measures the step's peak memory:

- CUDA: ``torch.cuda.max_memory_allocated`` over a few steps, after the statistics are reset once the
  network, optimiser and tensors are built (the tensors PyTorch allocated, not its cache or the
  CUDA context).
- CPU: in a spawned child process (a fresh interpreter, so nothing the caller allocated counts), the
  growth of the child's peak resident set over a few steps after the network and tensors are built:
  the step's peak resident growth, including what the allocator caches and keeps. On Linux the peak
  is the process's ``VmHWM``, reset to the current resident set just before the steps (``clear_refs``):
  ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` survives ``exec``, so a child spawned by a large
  process (a test session) starts with its parent's peak and would show no growth at all. Elsewhere
  the growth of ``ru_maxrss`` (which then undercounts where the start-up peaked higher).

Unlike ``feasibility.step_memory_bytes`` (an estimate from the traced activations) these are
measurements; both run the model in float32 without autocast.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass

import torch

from ..config import Config
from ..model.device import torch_threads
from ..model.shapes import input_size
from ..model.unet import UNet
from .feasibility import seconds_per_step
from .loss import masked_soft_dice_loss

MEMORY_STEPS = 3  # training steps over which the peak memory is taken


@dataclass(frozen=True)
class StepFootprint:
    """One training step of a configuration on one device.

    Attributes:
        seconds_per_step: the faster of ``feasibility.TIMED_STEPS`` timed steps.
        peak_memory_mb: the step's peak memory in MiB (see ``method``).
        method: ``"cuda max allocated"`` or ``"cpu peak RSS growth"``.
        device: ``"cpu"`` or ``"cuda"`` (as asked).
        threads: torch's intra-op threads on the CPU.
    """

    seconds_per_step: float
    peak_memory_mb: float
    method: str
    device: str
    threads: int


def measure_step(config: Config, device: str = "cpu", threads: int = 1) -> StepFootprint:
    """The measured time and peak memory of one training step of ``config`` (module docstring).

    ``threads`` sets torch's intra-op threads for the CPU time and memory measurements (restored
    afterwards in this process).
    """
    dev = torch.device(device)
    with torch_threads(threads):
        seconds = seconds_per_step(config, dev)
        if dev.type == "cuda":
            peak, method = _cuda_peak_bytes(config, dev), "cuda max allocated"
        else:
            peak, method = _cpu_peak_bytes(config, threads), "cpu peak RSS growth"
    return StepFootprint(seconds, peak / 2**20, method, device, threads)


def _setup(config: Config, device: torch.device) -> tuple:
    net = UNet(config.model).to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.train.learning_rate)
    batch = config.train.batch_size
    image = torch.randn(batch, config.model.in_channels, *input_size(config.model, config.patch.output_size),
                        device=device)
    target = torch.rand(batch, 1, *config.patch.output_size, device=device).round()
    return net, optimizer, image, target, torch.ones_like(target)


def _steps(net: UNet, optimizer: torch.optim.Optimizer, image: torch.Tensor, target: torch.Tensor,
           weight: torch.Tensor) -> None:
    for _ in range(MEMORY_STEPS):
        optimizer.zero_grad(set_to_none=True)
        masked_soft_dice_loss(net(image), target, weight).backward()
        optimizer.step()


def _cuda_peak_bytes(config: Config, device: torch.device) -> float:
    parts = _setup(config, device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    _steps(*parts)
    torch.cuda.synchronize(device)
    return float(torch.cuda.max_memory_allocated(device))


def _cpu_peak_bytes(config: Config, threads: int) -> float:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(cpu_peak_rss_growth, (config.to_json(), threads))


def cpu_peak_rss_growth(config_json: str, threads: int) -> float:
    """In this process: the growth in bytes of the peak resident set over ``MEMORY_STEPS`` training
    steps of the configuration (JSON), once its network and tensors are built (module docstring).
    Module-level so that a spawned child process can run it."""
    import resource

    torch.set_num_threads(threads)
    parts = _setup(Config.from_json(config_json), torch.device("cpu"))
    if _reset_peak():
        start = _status_kib("VmRSS")
        _steps(*parts)
        return float(_status_kib("VmHWM") - start) * 1024.0
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _steps(*parts)
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) * 1024.0


def _reset_peak() -> bool:
    """Reset this process's ``VmHWM`` to its current resident set (Linux 4.0+); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kib("VmHWM") >= 0
    except (OSError, ValueError, KeyError):
        return False


def _status_kib(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status``."""
    with open("/proc/self/status") as f:
        values = dict(line.split(":", 1) for line in f if ":" in line)
    return int(values[field].split()[0])
