"""``training.footprint.measure_step``: measured time and peak memory of one training step."""

from __future__ import annotations

import dataclasses

import torch

from hepaseg.training.footprint import measure_step

from ..tiny_study import tiny_study_config


def test_a_larger_patch_measures_more_memory_than_a_tiny_one():
    small = tiny_study_config()
    large = small.replace(patch=dataclasses.replace(small.patch, output_size=(96, 96, 16)))
    a, b = measure_step(small), measure_step(large)
    assert a.method == b.method == "cpu peak RSS growth" and (a.device, a.threads) == ("cpu", 1)
    assert a.seconds_per_step > 0 and b.seconds_per_step > a.seconds_per_step
    # one float32 feature map of the large patch's first level: 4 channels x 100 x 100 x 16 voxels, 2.4 MiB;
    # the small patch's whole step needs well under 1 MiB
    assert b.peak_memory_mb > a.peak_memory_mb + 5
    assert torch.get_num_threads() == 1
