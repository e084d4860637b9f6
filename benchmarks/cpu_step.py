"""Time of one CPU training step of a preset's network, variant by variant, back to back; prints JSON.

The step is training's own (``training.train._Stepper``: zero the gradients, forward under the
preset's autocast, masked soft Dice loss, backward, Adam) plus the weight average where the preset
has one, on a fixed random batch of the preset's patch size, in deterministic mode
(``training.runtime.execution_mode``). Variants (``--variants``, comma-separated):

- ``preset``: what training does (bf16 autocast where the CPU has bf16 instructions, the preset's
  memory format: channels-last 3D by default);
- ``fp32``: no autocast;  ``contiguous``: the (N, C, X, Y, Z) contiguous format instead;
- ``compiled``: ``torch.compile`` (inductor) of the network, compile time reported separately;
- ``before``: the step before issue 30: ``max_pool3d`` for every pooling and deterministic
  mode's NaN fill of new tensors.

Each variant starts from the same seed, so ``loss`` (after the last step) compares them: the same
number for ``preset`` and ``before`` (the changes keep results bit for bit), close for ``compiled``.
``step_ms`` is the median over ``--steps`` steps after ``--warmup``.

Usage:
    PYTHONPATH=src .venv/bin/python benchmarks/cpu_step.py --threads 1
    PYTHONPATH=src .venv/bin/python benchmarks/cpu_step.py --variants before,preset --repeat 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch

from hepaseg.model.device import memory_format, native_bf16
from hepaseg.model.shapes import input_size
from hepaseg.model.unet import UNet
from hepaseg.presets import preset
from hepaseg.training.runtime import execution_mode
from hepaseg.training.train import _Stepper, weight_average

VARIANTS = ("before", "preset", "fp32", "contiguous", "compiled")


def time_variant(variant: str, config, steps: int, warmup: int) -> dict:
    """Median step time (ms), compile time (s, ``compiled`` only) and the last loss of one variant."""
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    net = UNet(config.model)
    if variant == "before":
        net.pools = torch.nn.ModuleList(torch.nn.MaxPool3d(p, p) for p in config.model.pools)
    tc, out = config.train, config.patch.output_size
    fmt = memory_format(tc.channels_last and variant != "contiguous")
    net.to(memory_format=fmt)
    optimizer = torch.optim.Adam(net.parameters(), lr=tc.learning_rate, betas=tc.betas, eps=tc.eps)
    ema = weight_average(net, tc.ema_decay)
    amp = variant != "fp32" and tc.mixed_precision and native_bf16(cpu)
    forward = torch.compile(net) if variant == "compiled" else net
    step = _Stepper(net, forward, optimizer, cpu, amp)
    gen = torch.Generator().manual_seed(1)
    image = torch.randn(tc.batch_size, 1, *input_size(config.model, out), generator=gen).contiguous(memory_format=fmt)
    target = (torch.rand(tc.batch_size, 1, *out, generator=gen) > 0.7).float()
    weight = torch.ones_like(target)
    times, compile_s = [], None
    with execution_mode(cpu):
        if variant == "before":
            torch.utils.deterministic.fill_uninitialized_memory = True
        for i in range(warmup + steps):
            started = time.perf_counter()
            loss = step(image, target, weight)
            if ema is not None:
                ema.update_parameters(net)
            elapsed = time.perf_counter() - started
            if i == 0 and variant == "compiled":
                compile_s = elapsed
            if i >= warmup:
                times.append(elapsed)
    result = {"variant": variant, "step_ms": 1000 * statistics.median(times), "loss": float(loss),
              "bf16_autocast": amp}
    if compile_s is not None:
        result["first_step_s"] = compile_s
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="demo")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the demo trains with 1 per run)")
    p.add_argument("--variants", default="before,preset", help=f"comma-separated, of {', '.join(VARIANTS)}")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeat", type=int, default=1, help="time the variants this many rounds, alternating")
    args = p.parse_args(argv)
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(args.threads)
    config = preset(args.preset)
    rounds = [[time_variant(v, config, args.steps, args.warmup) for v in variants] for _ in range(args.repeat)]
    summary = {v: statistics.median(r[i]["step_ms"] for r in rounds) for i, v in enumerate(variants)}
    if "before" in summary and "preset" in summary:
        summary["speed_up_preset_over_before"] = summary["before"] / summary["preset"]
    print(json.dumps({"benchmark": "cpu_step", "preset": args.preset, "threads": args.threads,
                      "batch_size": config.train.batch_size, "output_size": config.patch.output_size,
                      "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
                      "median_step_ms": summary, "rounds": rounds}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
