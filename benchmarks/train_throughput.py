"""Training throughput of the real loop (data, augmentation, step, amortised validation); prints JSON.

    PYTHONPATH=src python benchmarks/train_throughput.py --preset demo --device cpu --threads 2
    PYTHONPATH=src python benchmarks/train_throughput.py --preset paper --device cpu --iterations 3 \
        --warmup 1 --no-validation

It writes a synthetic prepared cache sized for the preset (or uses ``--prep``), runs ``train_run``
for ``--iterations`` with a log line per iteration, and takes the loop rate from the log's time
stamps after ``--warmup`` iterations. One validation pass (whole-volume prediction of the
validation cases) is timed separately and amortised over the preset's ``validate_every``:
``amortised_it_per_s = 1 / (1 / it_per_s + validation_s / validate_every)``.
``process_cpu_s_per_it`` (CPU seconds of this process per iteration, start-up included) is the
figure to trust on a shared machine: with one thread it is about the wall time per iteration on an
idle core.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hepaseg.config import Config

from hepaseg.presets import preset
from hepaseg.data.preprocess import load_prepared, save_prepared_case
from hepaseg.model.device import resolve_device
from hepaseg.model.folder import LOG, model_dir
from hepaseg.model.shapes import input_size
from hepaseg.model.unet import UNet
from hepaseg.training.checkpoint import CHECKPOINT, load_checkpoint
from hepaseg.training.train import train_run
from hepaseg.training.validation import validate

# prepared-grid volumes like the presets' cohorts: (x, y, z) voxels and mm
VOLUMES = {"paper": ((330, 280, 80), (1.0, 1.0, 3.0)), "demo": ((180, 150, 40), (2.0, 2.0, 5.0))}


def synthetic_cache(root: Path, shape: tuple[int, int, int], spacing: tuple[float, float, float],
                    n_train: int = 2, n_val: int = 1, seed: int = 0) -> Path:
    """Bright ellipsoid livers (1.0) with dark spherical tumours (0.3) in a darker body, plus noise."""
    rng = np.random.default_rng(seed)
    axes = [np.arange(n, dtype=np.float32) for n in shape]
    for i in range(n_train + n_val):
        centre = np.array(shape) * rng.uniform(0.45, 0.55, 3)
        radii = np.array(shape) * rng.uniform(0.25, 0.32, 3)
        d = sum(((a - c) / r)[tuple(slice(None) if k == j else None for k in range(3))] ** 2
                for j, (a, c, r) in enumerate(zip(axes, centre, radii)))
        liver = d <= 1
        tumour = np.zeros(shape, bool)
        inside = np.argwhere(liver)
        for _ in range(4):
            c = inside[rng.integers(len(inside))]
            r_mm = rng.uniform(5, 20)
            dist = sum((((a - c[j]) * spacing[j]) ** 2)[tuple(slice(None) if k == j else None for k in range(3))]
                       for j, a in enumerate(axes))
            tumour |= (dist <= r_mm**2) & liver
        image = np.where(liver, 1.0, np.where(d <= 2.2, 0.1, -1.2)).astype(np.float32)
        image[tumour] = 0.3
        image += rng.normal(0, 0.08, shape).astype(np.float32)
        save_prepared_case(root, f"bench{i:02d}", "train" if i < n_train else "val", image, liver,
                           {"R1": tumour}, spacing)
    return root


def measure(prep: Path, work: Path, config: Config, iterations: int, warmup: int, device: str,
            validation: bool) -> dict:
    """Run the loop, return the rates (see the module docstring)."""
    tc = config.train
    bench = config.replace(train=replace(tc, iterations=iterations + 1, validate_every=iterations + 1, log_every=1))
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0, cpu0 = time.perf_counter(), time.process_time()
    train_run(prep, work, bench, seed=0, until_iterations=iterations, device=device, progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    log = [json.loads(line) for line in (model_dir(work) / LOG).read_text().splitlines()]
    stamps = {r["iteration"]: r["time"] for r in log if "loss" in r}
    timed = iterations - warmup
    loop_s = stamps[iterations] - stamps[warmup] if warmup else None
    it_per_s = timed / loop_s if loop_s else iterations / wall
    result = {"iterations": iterations, "warmup": warmup, "wall_s": wall, "it_per_s": it_per_s,
              "s_per_it": 1 / it_per_s, "process_cpu_s_per_it": cpu / iterations}
    if dev.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
    else:
        result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    if validation:
        net = UNet(config.model)
        net.load_state_dict(load_checkpoint(work / CHECKPOINT)["model"])
        net.to(dev)
        t1 = time.perf_counter()
        validate(net, load_prepared(prep).split("val"), config, dev, tc.mixed_precision and dev.type == "cuda",
                 tc.channels_last)
        val_s = time.perf_counter() - t1
        amortised = 1 / (1 / it_per_s + val_s / tc.validate_every)
        result.update(validation_s=val_s, validate_every=tc.validate_every, amortised_it_per_s=amortised,
                      full_run_hours=tc.iterations / amortised / 3600)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="demo", choices=sorted(VOLUMES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5, help="iterations left out of the rate (start-up, compile)")
    p.add_argument("--no-validation", action="store_true", help="skip timing a validation pass")
    p.add_argument("--compile", choices=["on", "off"], default=None, help="override config.train.compile")
    p.add_argument("--channels-last", choices=["on", "off"], default=None,
                   help="override config.train.channels_last")
    p.add_argument("--batch-size", type=int, default=None, help="override config.train.batch_size")
    p.add_argument("--prep", type=Path, default=None, help="use this prepared cache instead of a synthetic one")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = preset(args.preset)
    if args.compile:
        config = config.replace(train=replace(config.train, compile=args.compile == "on"))
    if args.channels_last:
        config = config.replace(train=replace(config.train, channels_last=args.channels_last == "on"))
    if args.batch_size:
        config = config.replace(train=replace(config.train, batch_size=args.batch_size))
    with tempfile.TemporaryDirectory(prefix="hepaseg-bench-") as tmp:
        prep = args.prep or synthetic_cache(Path(tmp) / "prep", *VOLUMES[args.preset])
        result = measure(prep, Path(tmp) / "run", config, args.iterations, args.warmup, args.device,
                         not args.no_validation)
    out = config.patch.output_size
    print(json.dumps({"benchmark": "train_throughput", "preset": args.preset, "device": args.device,
                      "threads": torch.get_num_threads(), "input_size": input_size(config.model, out),
                      "output_size": out, "batch_size": config.train.batch_size,
                      "compile": config.train.compile and args.device.startswith("cuda"),
                      "channels_last": config.train.channels_last, "torch": torch.__version__,
                      "machine": platform.processor() or platform.machine(), **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
