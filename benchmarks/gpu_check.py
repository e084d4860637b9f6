"""One CUDA check of the paper preset, a few minutes long; prints JSON (and writes it to --out).

    PYTHONPATH=src python benchmarks/gpu_check.py --out gpu_check.json

Needs only torch, numpy and scipy besides the package source: file-format and reporting libraries
the package imports at module level elsewhere (nibabel, cc3d, ...) are replaced by empty
placeholders when they are not installed, since nothing here reads or writes such files.

Checks and times, on the first CUDA device:
1. the real training loop of the paper preset (236 x 236 x 72 -> 52 x 52 x 32, batch 2, bf16,
   channels-last 3D), with torch.compile off and on: iterations/s and peak GPU memory;
2. one validation pass (whole-volume tiled prediction) of a synthetic 1 mm case;
3. network inference of one 428 x 428 x 136 input tile (244 x 244 x 96 output), bf16 and fp32:
   seconds per tile and peak memory;
and whether every peak fits a 24 GB card.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
import types
from dataclasses import replace
from pathlib import Path

OPTIONAL = ("nibabel", "SimpleITK", "pydicom", "highdicom", "cc3d", "statsmodels", "matplotlib", "tqdm",
            "safetensors", "pandas", "skimage")
GIB = 2**30
LIMIT_GIB = 24.0


def _placeholders() -> list[str]:
    """Empty modules for optional libraries that are missing; their names."""
    missing = [name for name in OPTIONAL if importlib.util.find_spec(name) is None]
    for name in missing:
        sys.modules[name] = types.ModuleType(name)
    return missing


def _inference(config, amp: bool, repeats: int = 3) -> dict:
    import torch

    from hepaseg.model.device import autocast
    from hepaseg.model.shapes import input_size
    from hepaseg.model.unet import UNet

    dev = torch.device("cuda")
    fmt = torch.channels_last_3d
    tile = config.infer.tile_output_size
    net = UNet(config.model).to(dev, memory_format=fmt).eval()
    x = torch.randn(1, 1, *input_size(config.model, tile), device=dev).contiguous(memory_format=fmt)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(dev)
    times = []
    with torch.inference_mode(), autocast(dev, amp):
        for _ in range(repeats + 1):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            y = net(x)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return {"input": list(x.shape[2:]), "output": list(y.shape[2:]), "bf16": amp,
            "s_per_tile": min(times[1:]), "first_call_s": times[0],
            "peak_memory_gib": torch.cuda.max_memory_allocated(dev) / GIB}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=40, help="timed training iterations per setting")
    p.add_argument("--warmup", type=int, default=10, help="iterations left out (cuDNN autotuning, compile)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args(argv)
    missing = _placeholders()

    import torch
    from train_throughput import VOLUMES, measure, synthetic_cache

    from hepaseg.presets import paper_config

    if not torch.cuda.is_available():
        print(json.dumps({"error": "CUDA is not available", "placeholders": missing}))
        return 1
    config = paper_config()
    report: dict = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0),
                    "capability": list(torch.cuda.get_device_capability(0)), "placeholders": missing,
                    "total_memory_gib": torch.cuda.get_device_properties(0).total_memory / GIB}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hepaseg-gpu-") as tmp:
        prep = synthetic_cache(Path(tmp) / "prep", *VOLUMES["paper"])
        report["training"] = {}
        for compile_on in (False, True):
            cfg = config.replace(train=replace(config.train, compile=compile_on))
            name = "compile_on" if compile_on else "compile_off"
            warmup = args.warmup * (3 if compile_on else 1)
            try:
                report["training"][name] = measure(prep, Path(tmp) / name, cfg, args.iterations + warmup, warmup,
                                                   "cuda", validation=not compile_on)
            except Exception as exc:  # report and go on with the other checks
                report["training"][name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            torch.cuda.empty_cache()
            print(json.dumps({name: report["training"][name]}), file=sys.stderr, flush=True)
    report["inference_tile"] = {}
    for amp in (True, False):
        key = "bf16" if amp else "fp32"
        try:
            report["inference_tile"][key] = _inference(config, amp)
        except torch.cuda.OutOfMemoryError as exc:
            report["inference_tile"][key] = {"error": f"out of memory: {str(exc)[:200]}"}
        torch.cuda.empty_cache()
    peaks = [r["peak_memory_gib"] for r in report["training"].values() if "peak_memory_gib" in r]
    peaks.append(report["inference_tile"].get("bf16", {}).get("peak_memory_gib", float("inf")))
    report["fits_24gb"] = bool(peaks) and max(peaks) < LIMIT_GIB
    report["check_seconds"] = time.perf_counter() - started
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
