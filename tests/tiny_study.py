"""The tiny study configuration of the study tests (not a test module): the demo preset shrunk to a
two-level network on a 4 mm grid, so a whole study on the small synthetic cohort takes seconds."""

from __future__ import annotations

from dataclasses import replace

from hepaseg.config import Config, InferConfig, ModelConfig, PatchConfig, PreprocessConfig, SelectConfig

from hepaseg.presets import demo_config, demo_liver_config


def tiny_study_config(iterations: int = 4) -> Config:
    """A2 trains ``iterations``; A1 halves two seeds from ``iterations / 2`` to ``iterations``."""
    cfg = demo_config()
    return cfg.replace(
        preprocess=PreprocessConfig(inplane_spacing_mm=4.0),
        model=ModelConfig(widths=(4, 8), z_convs=(0, 0), pools=((2, 2, 1),), dropout=0.0),
        patch=replace(cfg.patch, output_size=(8, 8, 4)),
        train=replace(cfg.train, iterations=iterations, validate_every=2, log_every=2, warmup_iterations=0),
        select=SelectConfig(runs=2, min_iterations=iterations // 2, max_iterations=iterations, eta=2),
        infer=InferConfig(tile_output_size=(40, 40, 12)))


def tiny_liver_config(iterations: int = 4) -> Config:
    """The demo liver model shrunk like ``tiny_study_config``: a two-level net on a 6 mm grid."""
    cfg = demo_liver_config()
    return cfg.replace(
        preprocess=replace(cfg.preprocess, inplane_spacing_mm=6.0),
        model=ModelConfig(widths=(4, 8), z_convs=(0, 0), pools=((2, 2, 1),), dropout=0.0, bn_momentum=0.1),
        patch=PatchConfig(output_size=(8, 8, 4), tumor_fraction=0.7),
        train=replace(cfg.train, iterations=iterations, validate_every=2, log_every=2, warmup_iterations=0),
        infer=replace(cfg.infer, tile_output_size=(40, 40, 12)))
