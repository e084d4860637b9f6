"""The tiny selection the selection tests share (not a test module): its configuration, and the
finished tasks of a selection folder by (seed, rung)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from hepaseg.config import Config, ModelConfig, SelectConfig

from hepaseg.presets import demo_config
from hepaseg.selection.state import STATE


def tiny_config() -> Config:
    """Four runs halved over 2, 4 and 8 iterations of a tiny network."""
    cfg = demo_config()
    return cfg.replace(
        model=ModelConfig(widths=(4, 8), z_convs=(0, 0), pools=((2, 2, 1),), dropout=0.0),
        patch=replace(cfg.patch, output_size=(8, 8, 4)),
        train=replace(cfg.train, iterations=8, validate_every=2, log_every=2, warmup_iterations=0),
        select=SelectConfig(runs=4, min_iterations=2, max_iterations=8, eta=2),
        infer=replace(cfg.infer, tile_output_size=(48, 44, 14)))


def records(out: Path) -> dict[tuple[int, int], dict]:
    """The task records of ``out/selection.json`` by (seed, rung)."""
    return {(t["seed"], t["rung"]): t for t in json.loads((out / STATE).read_text())["tasks"]}
