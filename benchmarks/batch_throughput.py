"""How fast one or several producers make training batches of a preset (issue 30); prints JSON.

A paper-sized synthetic cache: ``--cases`` cases of the paper's cohort (``synth.default_spec``, seed 0,
0.74-1.76 mm in-plane, 2-5 mm slices, up to 512 x 512 x 120) written and pre-processed with the
preset into ``--work`` (re-used by a second call). Then, on the host, as one producer does it
(``training.producers``): ``PatchSampler.next_batch`` (position, crop with padding,
weight mask) for ``--batches`` batches, and, separately, the augmentation of each batch on the CPU
(``augment.apply_batch``: flips, contrast, brightness; on a GPU run it happens on the GPU). Reports
batches per second for each part and the bytes of one batch. Then, for each count of ``--producers``,
the batches per second that training's ``training.producers.Prefetcher`` delivers with that many
producers (one: a thread; several: processes handing batches back through shared memory; pinned
host memory where CUDA is present, as training uses it), after its first batch, and the seconds
until that first batch (the processes' start). Without CUDA, the consumer's copy of each batch out
of shared memory goes into newly allocated memory (page faults: about 17 ms per paper batch on a
loaded 2-core box), which caps the figures for several producers there; with CUDA it goes into
torch's cached pinned memory.

Usage:
    .venv/bin/python benchmarks/batch_throughput.py --work /tmp/batch-bench --producers 1,2,4
    .venv/bin/python benchmarks/batch_throughput.py --preset demo --batches 200
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import torch

from hepaseg.data.preprocess import load_prepared, preprocess_dataset
from hepaseg.model.shapes import margins
from hepaseg.presets import preset
from hepaseg.synth import default_spec, write_cohort
from hepaseg.training.augment import apply_batch
from hepaseg.training.producers import Prefetcher
from hepaseg.training.sampling import PatchSampler


def paper_cache(work: Path, cases: int, config) -> Path:
    """``work/prep``: ``cases`` training cases of the paper's cohort (+ one validation case), prepared."""
    manifest = work / "cohort" / "dataset.json"
    if not manifest.is_file():
        spec = dataclasses.replace(default_spec(), n_train=cases, n_val=1, n_test=0, n_unlabeled=0)
        write_cohort(manifest.parent, seed=0, spec=spec, progress=False)
    preprocess_dataset(manifest, work / "prep", config.preprocess, progress=False)
    return work / "prep"


def measure(args) -> dict:
    config = preset(args.preset)
    data = load_prepared(paper_cache(Path(args.work), args.cases, config))
    out_size = config.patch.output_size
    sampler = PatchSampler(data.split("train"), config.train.rater, out_size, margins(config.model, out_size),
                           config.patch, config.augment, 0)
    sampler.next_batch(config.train.batch_size)  # the first batch maps the cache's files
    started = time.perf_counter()
    batches = [sampler.next_batch(config.train.batch_size) for _ in range(args.batches)]
    sample_s = time.perf_counter() - started
    started = time.perf_counter()
    for batch in batches:
        apply_batch(batch.augment, torch.from_numpy(batch.image), torch.from_numpy(batch.target),
                    torch.from_numpy(batch.weight))
    augment_s = time.perf_counter() - started
    one = batches[0]
    return {"preset": config.preset, "batch_size": config.train.batch_size,
            "input_patch": list(one.image.shape[2:]), "output_patch": list(one.target.shape[2:]),
            "bytes_per_batch": int(one.image.nbytes + one.target.nbytes + one.weight.nbytes),
            "batches": args.batches, "sample_batches_per_s": round(args.batches / sample_s, 2),
            "augment_cpu_batches_per_s": round(args.batches / augment_s, 2),
            "both_batches_per_s": round(args.batches / (sample_s + augment_s), 2),
            "prefetcher": [through_prefetcher(sampler, config.train.batch_size, n, args.batches)
                           for n in args.producers]}


def through_prefetcher(sampler: PatchSampler, batch_size: int, producers: int, batches: int) -> dict:
    """Batches per second delivered by a ``Prefetcher`` of ``producers`` after its first batch, and the
    seconds to that first batch."""
    pin = torch.cuda.is_available()
    started = time.perf_counter()
    with Prefetcher(sampler, batch_size, pin=pin, producers=producers) as prefetcher:
        prefetcher.get()
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(batches):
            prefetcher.get()
        seconds = time.perf_counter() - started
    return {"producers": producers, "pinned": pin, "batches_per_s": round(batches / seconds, 2),
            "first_batch_s": round(first_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper", help="the preset whose sampler is measured (default paper)")
    parser.add_argument("--work", default="batch-bench", help="the cohort and cache folder (re-used)")
    parser.add_argument("--cases", type=int, default=4, help="training cases in the cache (default 4)")
    parser.add_argument("--batches", type=int, default=100, help="timed batches (default 100)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for the augmentation (default 1)")
    parser.add_argument("--producers", type=lambda text: [int(n) for n in text.split(",")], default=[1],
                        help="comma-separated producer counts measured through the Prefetcher (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = measure(args)
    result["machine"] = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                         "torch": torch.__version__}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
