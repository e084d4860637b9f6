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


def test_a_model_folder_of_hepaseg_0_1_reads_with_the_score_under_its_true_name(tmp_path):
    """hepaseg 0.1 stored the score of ``train.validation_metric`` as ``best_jaccard`` (a history entry's as
    ``jaccard``) whatever the metric; ``read_model_info`` gives it as ``best_score`` / ``score``."""
    from hepaseg.model.folder import read_model_info

    old = {"seed": 3, "iterations_done": 10, "best_iteration": 5, "best_jaccard": 0.625, "validation_metric": "dice",
           "train_seconds": 1.5, "history": [{"iteration": 5, "jaccard": 0.625, "metric": "dice"},
                                             {"iteration": 10, "jaccard": 0.5, "metric": "dice"}]}
    write_model_info(tmp_path, demo_config(), old)
    _, info = read_model_info(tmp_path)
    assert info["best_score"] == 0.625 and "best_jaccard" not in info and info["validation_metric"] == "dice"
    assert [(h["iteration"], h["score"]) for h in info["history"]] == [(5, 0.625), (10, 0.5)]
    assert all("jaccard" not in h for h in info["history"])
    assert {k: info[k] for k in ("seed", "iterations_done", "best_iteration", "train_seconds")} == \
        {"seed": 3, "iterations_done": 10, "best_iteration": 5, "train_seconds": 1.5}
