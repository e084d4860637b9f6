"""The 2D and isotropic 3D U-Nets of the tests: the ablation's variants (``presets.variant_config``) of
an aU-Net of the given widths, so that the tests exercise the one definition of each variant."""

from __future__ import annotations

from hepaseg.config import Config, ModelConfig
from hepaseg.presets import WIDTH_DIVISOR_3D, variant_config


def _aunet(widths: tuple[int, ...], dropout: float) -> Config:
    """A configuration whose model is an aU-Net of ``widths`` (in-plane pooling only, no z convolution)."""
    levels = len(widths)
    return Config(model=ModelConfig(widths=widths, z_convs=(0,) * levels, pools=((2, 2, 1),) * (levels - 1),
                                    dropout=dropout))


def unet_2d(widths: tuple[int, ...] = (64, 128, 256, 512, 1024), dropout: float = 0.5) -> ModelConfig:
    """The 2D variant: 3x3x1 convolutions, no z convolution, no pooling in z (use output z = 1)."""
    return variant_config(_aunet(widths, dropout), "2d").model


def unet_3d(widths: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.5) -> ModelConfig:
    """The 3D variant with ``widths`` (its base's widths times ``WIDTH_DIVISOR_3D``): 3x3x3 convolutions,
    2x2x2 pooling, no extra z convolution."""
    return variant_config(_aunet(tuple(w * WIDTH_DIVISOR_3D for w in widths), dropout), "3d").model
