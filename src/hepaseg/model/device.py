"""Where and in which arithmetic a network runs: device choice, CPU threads, bf16 autocast,
channels-last 3D layout, ``torch.compile``. Training and inference both take these from here.

bf16 autocast pays on CUDA and on CPUs with bf16 instructions (``native_bf16``); elsewhere the CPU
would emulate it, slower than float32. Channels-last 3D tensors are faster on CUDA and x86 CPUs.
"""

from __future__ import annotations

import contextlib

import torch

from ..errors import InputError


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


def trained_precision(mixed_precision: bool, device: str | torch.device) -> str:
    """The ``Predictor`` precision of the arithmetic training used on ``device``: ``bf16`` where
    ``train.mixed_precision`` is on and the device has native bf16 (``native_bf16``), else ``fp32``.
    The study predicts with it: on the demo's models and a CPU with bf16 instructions, 0.20 s
    against 0.30 s per test case (docs/benchmarks.md, "Liver model", third round)."""
    return "bf16" if mixed_precision and native_bf16(resolve_device(device)) else "fp32"


def memory_format(channels_last: bool) -> torch.memory_format:
    """Channels-last 3D when asked (faster on CUDA and on x86 CPUs); the default layout otherwise."""
    return torch.channels_last_3d if channels_last else torch.contiguous_format


def maybe_compile(net: torch.nn.Module, enabled: bool, device: torch.device) -> torch.nn.Module:
    """``torch.compile(net)`` on CUDA when enabled; ``net`` itself otherwise or if compile is missing."""
    if not enabled or device.type != "cuda" or not hasattr(torch, "compile"):
        return net
    return torch.compile(net)  # compilation errors surface at the first call; the caller falls back


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` (CUDA or CPU) when ``amp``; otherwise nothing."""
    if amp:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def torch_threads(n: int):
    """torch's CPU (intra-op) threads set to ``n`` inside the block, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
