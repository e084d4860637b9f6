"""The aU-Net (``model.unet``): parameter count, forward shapes, gradients, initialisation."""

from __future__ import annotations

import math

import pytest
import torch

from hepaseg.config import ModelConfig

from hepaseg.presets import demo_config
from hepaseg.model.shapes import input_size
from hepaseg.model.unet import MaxPool, UNet, count_parameters
from hepaseg.presets import paper_config

from .variant_nets import unet_2d, unet_3d

TINY_AUNET = ModelConfig(widths=(2, 4, 4), z_convs=(0, 1, 1), pools=((2, 2, 2), (2, 2, 1)), dropout=0.5)
TINY_2D = unet_2d(widths=(2, 4, 4))
TINY_3D = unet_3d(widths=(2, 4))


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
    net = UNet(paper_config().model)  # the paper's aU-Net
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
    large = 0
    for m in convs:
        receptive = math.prod(m.kernel_size)
        bound = math.sqrt(6 / (receptive * (m.in_channels + m.out_channels)))  # Keras glorot_uniform
        w = m.weight.detach()
        assert w.abs().max() <= bound and torch.count_nonzero(m.bias) == 0
        if w.numel() > 30_000:  # U(-b, b) has variance b^2 / 3 (too noisy a check on fewer weights)
            assert w.var().item() == pytest.approx(bound**2 / 3, rel=0.03)
            large += 1
    # by hand, 3 x 3 x 1 kernels: all but the first (1 -> 64: 576 weights) and the head (64 -> 1) have
    # more than 30 000 (the smallest, 64 -> 64: 36 864; the transposed 128 -> 64 of 2 x 2 x 1: 32 768)
    assert large == len(convs) - 2


@pytest.mark.parametrize("size,shape", [((2, 2, 1), (2, 3, 9, 7, 5)), ((3, 2, 1), (1, 2, 9, 8, 4)),
                                        ((2, 2, 2), (2, 3, 8, 6, 4))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_max_pool_equals_max_pool3d_in_values_and_gradients_ties_included(size, shape, dtype):
    """``MaxPool``'s 2D route (z factor 1) against ``max_pool3d``: odd sizes floor, ties (many
    equal values after rounding) send the gradient to the same voxel."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 3, shape, generator=gen).to(dtype)  # only 3 values: ties in most windows
    grad = torch.randn(shape[:2] + tuple(n // k for n, k in zip(shape[2:], size)), generator=gen).to(dtype)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = MaxPool(size)(ours)
    ref = torch.nn.functional.max_pool3d(theirs, size, size)
    out.backward(grad)
    ref.backward(grad)
    assert out.shape == ref.shape and torch.equal(out, ref)
    assert torch.equal(ours.grad, theirs.grad) and ours.grad.is_contiguous()
    cl = torch.channels_last_3d
    ours, theirs = x.contiguous(memory_format=cl).requires_grad_(), x.contiguous(memory_format=cl).requires_grad_()
    out, ref = MaxPool(size)(ours), torch.nn.functional.max_pool3d(theirs, size, size)
    out.backward(grad.contiguous(memory_format=cl))
    ref.backward(grad.contiguous(memory_format=cl))
    assert torch.equal(out, ref) and out.is_contiguous(memory_format=cl)
    assert torch.equal(ours.grad, theirs.grad) and ours.grad.is_contiguous(memory_format=cl)
