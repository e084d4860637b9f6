"""One optimisation step (``training.train._Stepper``): a compiled network gives the eager loss,
and a network whose compiled forward fails falls back to eager with one log line, as if it had
never been tried."""

from __future__ import annotations

import shutil

import pytest
import torch

from hepaseg.config import ModelConfig
from hepaseg.model.shapes import input_size
from hepaseg.model.unet import UNet
from hepaseg.training.runtime import execution_mode
from hepaseg.training.train import _Stepper

TINY = ModelConfig(widths=(2, 4), z_convs=(0, 1), pools=((2, 2, 1),), dropout=0.0)
OUT = (4, 4, 2)
CPU = torch.device("cpu")


def batch():
    gen = torch.Generator().manual_seed(3)
    image = torch.randn(2, 1, *input_size(TINY, OUT), generator=gen)
    target = (torch.rand(2, 1, *OUT, generator=gen) > 0.5).float()
    return image, target, torch.ones_like(target)


def losses(forward_of, steps: int) -> tuple[list[float], UNet]:
    """Losses of ``steps`` steps of a seeded tiny net whose forward is ``forward_of(net)``."""
    torch.manual_seed(0)
    net = UNet(TINY)
    stepper = _Stepper(net, forward_of(net), torch.optim.Adam(net.parameters(), lr=1e-2), CPU, amp=False)
    with execution_mode(CPU):
        return [float(stepper(*batch())) for _ in range(steps)], net


class FailsAfterRunning(torch.nn.Module):
    """A "compiled" forward that runs the network (moving its batch-norm statistics) and then fails."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        self.net(x)
        raise RuntimeError("inductor: no C++ compiler")


def test_a_failing_compiled_forward_falls_back_to_eager_with_one_line(capsys):
    eager, eager_net = losses(lambda net: net, 3)
    fallen, fallen_net = losses(FailsAfterRunning, 3)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["torch.compile failed (RuntimeError: inductor: no C++ compiler); training without it"]
    assert fallen == eager  # bit for bit: the failed try left no trace, BN statistics included
    for (name, a), b in zip(eager_net.state_dict().items(), fallen_net.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile on the CPU needs a C++ compiler (g++)")
def test_a_compiled_cpu_step_gives_the_eager_loss(capsys):
    eager, _ = losses(lambda net: net, 3)
    compiled, _ = losses(torch.compile, 3)
    assert "torch.compile failed" not in capsys.readouterr().err  # it did run compiled
    # fused kernels sum in another order: float32 rounding, far below any training effect
    assert compiled == pytest.approx(eager, rel=1e-4, abs=1e-6)
    assert eager[0] != eager[2]  # the steps did train
