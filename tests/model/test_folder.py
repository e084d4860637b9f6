"""The model folder (``model.folder``): what ``load_model`` refuses, each with its own message."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from hepaseg.config import ModelConfig

from hepaseg.presets import demo_config
from hepaseg.errors import InputError
from hepaseg.model.folder import CONFIG, INFO, load_model, write_model_info, write_weights
from hepaseg.model.unet import UNet


def test_model_folder_errors(tmp_path):
    cfg = demo_config().replace(model=ModelConfig(widths=(4, 8), z_convs=(0, 1), pools=((2, 2, 1),), dropout=0.1))
    folder = tmp_path / "run" / "model"
    torch.manual_seed(0)
    write_model_info(folder, cfg, {"seed": 0})
    write_weights(folder, UNet(cfg.model).state_dict())
    net, loaded = load_model(folder)
    assert loaded == cfg and not net.training
    with pytest.raises(InputError, match="not a hepaseg model folder"):
        load_model(tmp_path / "nowhere")
    bigger = cfg.replace(model=replace(cfg.model, widths=(4, 16)))
    (folder / CONFIG).write_text(bigger.to_json())
    with pytest.raises(InputError, match="weights do not fit"):
        load_model(folder)
    info = json.loads((folder / INFO).read_text())
    (folder / INFO).write_text(json.dumps({**info, "version": 99}))
    with pytest.raises(InputError, match="version 99"):
        load_model(folder)


def test_write_infer_makes_the_settings_the_folders_own(tmp_path):
    """``write_infer`` rewrites only ``config.json``'s ``infer`` block, and leaves the file untouched when
    the settings are already the folder's."""
    import dataclasses

    from hepaseg.config import read_config

    from hepaseg.presets import demo_config
    from hepaseg.model.folder import CONFIG, write_infer, write_model_info

    cfg = demo_config()
    write_model_info(tmp_path, cfg, {"seed": 0})
    before = (tmp_path / CONFIG).stat().st_mtime_ns
    write_infer(tmp_path, cfg.infer)
    assert (tmp_path / CONFIG).stat().st_mtime_ns == before
    changed = dataclasses.replace(cfg.infer, tta=False, threshold=0.4)
    write_infer(tmp_path, changed)
    assert read_config(tmp_path / CONFIG) == cfg.replace(infer=changed)
