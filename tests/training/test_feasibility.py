"""Before a run: its memory estimate (checked against a trace on real tensors), the refusal of a run
that does not fit, and of one that would take days on a CPU nobody asked for."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from hepaseg.config import ModelConfig

from hepaseg.presets import demo_config
from hepaseg.errors import InputError
from hepaseg.model.shapes import input_size
from hepaseg.model.unet import UNet
from hepaseg.training import feasibility
from hepaseg.training.feasibility import RUNTIME_BYTES, check_feasible, step_memory_bytes
from hepaseg.training.train import train_run


def _tiny(iterations: int = 4):
    base = demo_config()
    return base.replace(
        model=ModelConfig(widths=(4, 8), z_convs=(0, 1), pools=((2, 2, 1),), dropout=0.1),
        patch=replace(base.patch, output_size=(12, 12, 4)),
        train=replace(base.train, iterations=iterations, validate_every=2, log_every=2, warmup_iterations=0),
        infer=replace(base.infer, tile_output_size=(24, 24, 8)))


@pytest.fixture(scope="module")
def prep(tmp_path_factory, phantom_cache):
    return phantom_cache(tmp_path_factory.mktemp("prep"), seed=2, n_train=2, n_val=1)


def test_the_memory_estimate_is_the_traced_activations_weights_and_runtime():
    config = _tiny()
    net = UNet(config.model)
    outputs = []
    for module in net.modules():
        if not list(module.children()):
            module.register_forward_hook(lambda m, i, o: outputs.append(o.numel() * o.element_size()))
    net(torch.zeros(config.train.batch_size, 1, *input_size(config.model, config.patch.output_size)))
    weights = 4 * 4 * sum(p.numel() for p in net.parameters())  # fp32 weights, gradients, two Adam moments
    assert step_memory_bytes(config, bf16=False) == sum(outputs) + weights + RUNTIME_BYTES
    assert step_memory_bytes(config, bf16=True) == sum(outputs) / 2 + weights + RUNTIME_BYTES


def test_a_run_that_does_not_fit_is_refused_before_training(prep, tmp_path, monkeypatch):
    monkeypatch.setattr(feasibility, "available_host_memory", lambda: 10 * 2**20)
    with pytest.raises(InputError, match=r"needs about 0\.5 GiB of CPU memory, 0\.0 GiB are free"):
        train_run(prep, tmp_path / "run", _tiny(), device="cpu", progress=False)
    assert list((tmp_path / "run").iterdir()) == []


def test_days_on_a_cpu_nobody_asked_for_need_device_cpu(prep, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # "auto" falls back to the CPU
    endless = _tiny(iterations=10**9)
    step = feasibility.seconds_per_step(endless, torch.device("cpu"))
    days = step * 10**9 / 86400
    with pytest.raises(InputError, match=r"would take about \d+ days .* pass --device cpu") as refused:
        train_run(prep, tmp_path / "run", endless, device="auto", progress=False)
    shown = int(str(refused.value).split("about ")[1].split(" days")[0])
    assert 0.25 * days <= shown <= 4 * days  # the estimate is a measurement: same order as a second one
    assert list((tmp_path / "run").iterdir()) == []
    check_feasible(endless, torch.device("cpu"), "cpu", 10**9, bf16=False)  # asked for: no check
    done = train_run(prep, tmp_path / "asked", endless, until_iterations=2, device="cpu", progress=False)
    assert done.iterations_done == 2
