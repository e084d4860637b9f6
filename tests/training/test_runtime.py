"""``training.runtime.execution_mode``: the CPU settings a run trains under, restored afterwards."""

from __future__ import annotations

import torch

from hepaseg.training.runtime import execution_mode


def test_cpu_mode_is_deterministic_without_the_nan_fill_and_restores_the_settings():
    before = (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory)
    with execution_mode(torch.device("cpu")):
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.utils.deterministic.fill_uninitialized_memory
    assert (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory) == before
