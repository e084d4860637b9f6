"""The model folder: everything ``predict`` needs, written by training and selection.

``model/`` holds ``weights.safetensors`` (the best validated state), ``config.json`` (the full
``Config``), ``model.json`` (format version, seed, best iteration and Jaccard, validation history)
and ``train_log.jsonl`` (the training log). Every file is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..config import Config, read_config
from ..errors import InputError
from ..io.atomic import atomic_path, write_json, write_text

MODEL_DIR = "model"


MODEL_FORMAT = "hepaseg-model"


MODEL_VERSION = 1


WEIGHTS = "weights.safetensors"


CONFIG = "config.json"


INFO = "model.json"


LOG = "train_log.jsonl"


def require_format(path: Path, data: Any, fmt: str, version: int, what: str) -> None:
    """Raise InputError unless ``data`` is a dict of format ``fmt`` and version ``version``."""
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise InputError(path, f"not a hepaseg {what}")
    if data.get("version") != version:
        raise InputError(path, f"{what} version {data.get('version')} is not supported "
                               f"(this hepaseg reads version {version})")


def model_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / MODEL_DIR


def write_model_info(folder: str | Path, config: Config, info: dict[str, Any]) -> None:
    """Write ``config.json`` and ``model.json`` (``info`` plus the format and version)."""
    folder = Path(folder)
    write_text(folder / CONFIG, config.to_json())
    write_json(folder / INFO, {"format": MODEL_FORMAT, "version": MODEL_VERSION, **info})


def write_weights(folder: str | Path, state: dict[str, torch.Tensor]) -> None:
    """Write a state dict as ``weights.safetensors``."""
    from safetensors.torch import save_file

    with atomic_path(Path(folder) / WEIGHTS) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))


def read_model_info(folder: str | Path) -> tuple[Config, dict[str, Any]]:
    """The ``Config`` and ``model.json`` of a model folder.

    Raises:
        InputError: missing files, another format or version, or an unreadable configuration.
    """
    folder = Path(folder)
    info_path, config_path = folder / INFO, folder / CONFIG
    if not info_path.is_file() or not config_path.is_file():
        raise InputError(folder, f"not a hepaseg model folder (needs {INFO} and {CONFIG})")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(info_path, f"invalid JSON ({exc.msg}, line {exc.lineno})") from None
    require_format(info_path, info, MODEL_FORMAT, MODEL_VERSION, "model description")
    return read_config(config_path), info


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, Config]:
    """The trained network (eval mode, on ``device``) and its configuration from a model folder.

    Raises:
        InputError: the folder is missing, incomplete, of another version, or its weights do not
            fit its configuration.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .unet import UNet

    folder = Path(folder)
    config, _ = read_model_info(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise InputError(folder, f"has no {WEIGHTS} (the run has not validated yet)")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise InputError(weights, f"unreadable weights ({exc})") from None
    net = UNet(config.model)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(weights, f"weights do not fit {CONFIG} ({first})") from None
    return net.to(device).eval(), config
