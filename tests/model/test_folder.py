"""The model folder (``model.folder``): what ``load_model`` refuses, each with its own message."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from hepaseg.config import ModelConfig, demo_config
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
