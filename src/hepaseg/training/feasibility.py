"""Before a run starts: will it fit in memory, and will it finish where it was started?

- Memory (every device): one training step needs about the network's saved activations for a
  batch of patches (traced on the ``meta`` device: shapes only, no memory, no arithmetic), halved
  under bf16 autocast, plus four copies of the weights (weights, gradients, Adam's two moments)
  and ``RUNTIME_BYTES`` for the framework itself. More than the device has free is an error before
  training, not an out-of-memory kill later. (Paper preset, fp32, batch 2: estimate 17.0 GiB,
  measured peak 14.8 GiB on the CPU; demo preset: 0.66 GiB estimated, 0.56 GiB measured.)
- Time (only where ``--device auto`` fell back to the CPU): real optimisation steps of a
  throw-away network on random patches measure the step time (one step where it alone shows the
  run far too long, else the faster of two); a run that would take more than
  ``MAX_UNASKED_CPU_HOURS`` stops with the estimate and asks for an explicit ``--device cpu``.
  The throw-away steps draw from torch's generator before the run seeds it, so the run is
  unchanged.
"""

from __future__ import annotations

import math
import time

import torch

from ..config import Config
from ..errors import InputError
from ..inference.tiling import available_host_memory
from ..model.shapes import input_size
from ..model.unet import UNet
from .loss import masked_soft_dice_loss

GIB = 2**30
RUNTIME_BYTES = 0.5 * GIB  # torch, numpy and the data thread: measured about 0.4 GiB on the CPU
MAX_UNASKED_CPU_HOURS = 24.0
TIMED_STEPS = 2
CLEAR_MARGIN = 4.0  # one step suffices when it shows the run this many times over the limit


def step_memory_bytes(config: Config, bf16: bool) -> float:
    """Estimated peak memory (bytes) of one training step of ``config`` (see the module docstring)."""
    with torch.device("meta"):
        net = UNet(config.model)
    saved = [0]

    def count(module: torch.nn.Module, inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor):
            saved[0] += output.numel() * 4

    hooks = [m.register_forward_hook(count) for m in net.modules() if not list(m.children())]
    x = torch.empty(config.train.batch_size, config.model.in_channels,
                    *input_size(config.model, config.patch.output_size), device="meta")
    net(x)
    for hook in hooks:
        hook.remove()
    weights = sum(p.numel() for p in net.parameters()) * 4
    return saved[0] * (0.5 if bf16 else 1.0) + 4 * weights + RUNTIME_BYTES


def seconds_per_step(config: Config, device: torch.device, enough: float = math.inf) -> float:
    """The measured time of one optimisation step on random patches: the faster of ``TIMED_STEPS``,
    or the first alone once it takes longer than ``enough`` seconds."""
    net = UNet(config.model).to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.train.learning_rate)
    shape = (config.train.batch_size, config.model.in_channels, *input_size(config.model, config.patch.output_size))
    out_shape = (config.train.batch_size, 1, *config.patch.output_size)
    image, target, weight = torch.randn(shape), torch.rand(out_shape).round(), torch.ones(out_shape)
    best = math.inf
    for _ in range(TIMED_STEPS):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        masked_soft_dice_loss(net(image.to(device)), target.to(device), weight.to(device)).backward()
        optimizer.step()
        best = min(best, time.perf_counter() - start)
        if best > enough:
            break
    return best


def check_feasible(config: Config, device: torch.device, asked: str, iterations: int, bf16: bool,
                   parallel: int = 1) -> None:
    """Raise InputError if a run of ``iterations`` more iterations cannot finish on ``device``.

    Args:
        asked: the device the user asked for (``auto``, ``cpu``, ``cuda``); the time check runs only
            where ``auto`` fell back to the CPU.
        bf16: whether the run trains under bf16 autocast.
        parallel: runs training at once on this device (a selection's local slots).
    """
    need = parallel * step_memory_bytes(config, bf16)
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else available_host_memory()
    if need > free:
        runs = f"{parallel} runs' training steps of this configuration need" if parallel > 1 else \
            "a training step of this configuration needs"
        raise InputError(None, f"{runs} about {need / GIB:.1f} GiB of "
                               f"{device.type.upper()} memory, {free / GIB:.1f} GiB are free (batch "
                               f"{config.train.batch_size}, patch {config.patch.output_size}); use a smaller "
                               "preset or a larger device")
    if str(asked) != "auto" or device.type != "cpu" or iterations <= 0:
        return
    step = seconds_per_step(config, device, enough=CLEAR_MARGIN * MAX_UNASKED_CPU_HOURS * 3600 / iterations)
    hours = step * iterations / 3600
    if hours > MAX_UNASKED_CPU_HOURS:
        raise InputError(None, f"no GPU found: {iterations} iterations on this CPU would take about "
                               f"{_duration(hours)} ({step:.2f} s per iteration, measured); pass --device cpu "
                               "to train on the CPU anyway, or run on a GPU")


def _duration(hours: float) -> str:
    return f"{hours:.0f} hours" if hours < 72 else f"{hours / 24:.0f} days"
