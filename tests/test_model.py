"""The aU-Net: shape arithmetic, parameter count, forward shapes, gradients, initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from prepared_phantom import one_torch_thread  # noqa: F401 (autouse fixture)

from hepaseg.config import ModelConfig, demo_config
from hepaseg.errors import InputError
from hepaseg.model.shapes import input_size, margins, output_size, pool_factor, valid_output_size
from hepaseg.model.unet import UNet, aunet_config, count_parameters, unet2d_config, unet3d_config

TINY_AUNET = ModelConfig(widths=(2, 4, 4), z_convs=(0, 1, 1), pools=((2, 2, 2), (2, 2, 1)), dropout=0.5)
TINY_2D = unet2d_config(widths=(2, 4, 4))
TINY_3D = unet3d_config(widths=(2, 4))


def test_paper_default_shapes():
    cfg = ModelConfig()
    assert input_size(cfg, (52, 52, 32)) == (236, 236, 72)
    assert output_size(cfg, (236, 236, 72)) == (52, 52, 32)
    assert margins(cfg, (52, 52, 32)) == (92, 92, 20)
    assert pool_factor(cfg) == (16, 16, 4)
    # the inference tile: 244 x 244 x 96 out of 428 x 428 x 136
    assert input_size(cfg, (244, 244, 96)) == (428, 428, 136)


def test_variant_shapes_by_hand():
    # 2D U-Net: classic in-plane arithmetic, z untouched
    assert input_size(unet2d_config(), (52, 52, 1)) == (236, 236, 1)
    # isotropic 3D U-Net, 4 levels: 44 -> 48/2=24 -> 28/2=14 -> 18/2=9; 9+4=13 -> 26+4=30 -> 64 -> 132
    assert input_size(unet3d_config(), (44, 44, 44)) == (132, 132, 132)
    assert output_size(unet3d_config(), (132, 132, 132)) == (44, 44, 44)


def test_invalid_sizes_are_input_errors():
    cfg = ModelConfig()
    with pytest.raises(InputError, match="not valid"):
        output_size(cfg, (235, 236, 72))
    with pytest.raises(InputError, match="nearest smaller valid size: \\(52, 52, 32\\)"):
        input_size(cfg, (53, 53, 33))
    with pytest.raises(InputError, match="pools needs 4"):
        output_size(ModelConfig(pools=((2, 2, 2),)), (236, 236, 72))


@pytest.mark.parametrize("cfg", [ModelConfig(), unet2d_config(), unet3d_config(), demo_config().model, TINY_AUNET])
def test_valid_output_size_is_the_largest_valid_one(cfg):
    for wanted in [(60, 61, 40), (100, 90, 37)]:
        best = valid_output_size(cfg, wanted)
        assert output_size(cfg, input_size(cfg, best)) == best
        for axis in range(3):
            assert best[axis] <= wanted[axis]
            for larger in range(best[axis] + 1, wanted[axis] + 1):
                probe = list(best)
                probe[axis] = larger
                with pytest.raises(InputError):
                    input_size(cfg, tuple(probe))


def _expected_parameters(cfg: ModelConfig) -> int:
    """By hand: conv = k c_in c_out + c_out, BN = 2 c, transposed conv = p c_in c_out + c_out."""
    def conv(c_in, c_out, kernel):
        return math.prod(kernel) * c_in * c_out + c_out

    def block(c_in, c_out, level):
        n = conv(c_in, c_out, cfg.kernel) + conv(c_out, c_out, cfg.kernel) + 4 * c_out
        return n + cfg.z_convs[level] * (conv(c_out, c_out, (1, 1, 3)) + 2 * c_out)

    w = cfg.widths
    total, c_in = 0, cfg.in_channels
    for level in range(len(w) - 1):
        total += block(c_in, w[level], level) + block(2 * w[level], w[level], level)
        total += conv(w[level + 1], w[level], cfg.pools[level])
        c_in = w[level]
    return total + block(c_in, w[-1], len(w) - 1) + conv(w[0], 1, (1, 1, 1))


def test_paper_parameter_count():
    net = UNet(aunet_config())
    n = count_parameters(net)
    assert n == _expected_parameters(ModelConfig())
    assert round(n / 1e6) == 36  # METHOD.md section 4: 36 M parameters


@pytest.mark.parametrize("cfg, out", [(TINY_AUNET, (8, 8, 4)), (TINY_2D, (4, 4, 1)), (TINY_3D, (4, 4, 4)),
                                      (demo_config().model, demo_config().patch.output_size)])
def test_forward_gives_the_predicted_shape(cfg, out):
    torch.manual_seed(0)
    net = UNet(cfg).eval()
    inp = input_size(cfg, out)
    with torch.no_grad():
        y = net(torch.randn(1, 1, *inp))
    assert tuple(y.shape) == (1, 1, *out)


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    net = UNet(TINY_AUNET).train()
    x = torch.randn(2, 1, *input_size(TINY_AUNET, (8, 8, 4)))
    net(x).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_glorot_uniform_init_decided_by_seed():
    cfg = ModelConfig(widths=(64, 128), z_convs=(0, 1), pools=((2, 2, 1),))
    nets = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        nets.append(UNet(cfg))
    a, b, c = nets
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.down[0][0].weight, c.down[0][0].weight)
    convs = [m for m in a.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d))]
    assert len(convs) == 2 + (2 + 1) + 2 + 1 + 1  # down, bottom (with its z conv), up, transposed, head
    for m in convs:
        receptive = math.prod(m.kernel_size)
        bound = math.sqrt(6 / (receptive * (m.in_channels + m.out_channels)))  # Keras glorot_uniform
        w = m.weight.detach()
        assert w.abs().max() <= bound and torch.count_nonzero(m.bias) == 0
        if w.numel() > 30_000:  # U(-b, b) has variance b^2 / 3
            assert w.var().item() == pytest.approx(bound**2 / 3, rel=0.03)
