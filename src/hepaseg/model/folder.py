"""The model folder: everything ``predict`` needs, written by training and selection.

``model/`` holds ``weights.safetensors`` (the best validated state), ``config.json`` (the full
``Config``), ``model.json`` (format version, seed, best iteration and validation score, validation history)
and ``train_log.jsonl`` (the training log). Every file is written atomically. A tumour model may
hold its liver model, a model folder itself (``config.preprocess.target == "liver"``), as
``model/liver/`` (``embed_liver_model``): then ``predict`` needs no liver mask. The folder decides how
it predicts (``inference.predictor.Predictor``): ``config.json``'s ``infer`` block (a study writes the
settings it predicts with there, ``write_infer``) and the arithmetic its ``train`` block trained in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..config import Config, InferConfig, read_config
from ..errors import InputError
from ..io.atomic import DIR_MODE, atomic_path, replace_dir, temporary_prefix, write_json, write_text

MODEL_DIR = "model"


MODEL_FORMAT = "hepaseg-model"


MODEL_VERSION = 1


WEIGHTS = "weights.safetensors"


CONFIG = "config.json"


INFO = "model.json"


LOG = "train_log.jsonl"


LIVER_DIR = "liver"


def require_format(path: Path, data: Any, fmt: str, version: int, what: str,
                   retired: dict[int, str] | None = None) -> None:
    """Raise InputError unless ``data`` is a dict of format ``fmt`` and version ``version``;
    ``retired`` maps an older version to the one-line reason this hepaseg cannot use it."""
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise InputError(path, f"not a hepaseg {what}")
    if retired and data.get("version") in retired:
        raise InputError(path, retired[data["version"]])
    if data.get("version") != version:
        raise InputError(path, f"{what} version {data.get('version')} is not supported "
                               f"(this hepaseg reads version {version})")


def model_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / MODEL_DIR


def liver_model_dir(folder: str | Path) -> Path:
    """Where a tumour model folder keeps its liver model."""
    return Path(folder) / LIVER_DIR


SHIPPED_LIVER_PACKAGE = "hepaseg.shipped.liver"


def shipped_liver_dir() -> Path | None:
    """The liver model shipped in the package (``hepaseg/shipped/liver/``, package data: trained on the
    randomised synthetic cohort, docs/liver-model.md), or None where this installation has no weights."""
    from importlib import resources

    folder = Path(str(resources.files(SHIPPED_LIVER_PACKAGE)))
    return folder if (folder / WEIGHTS).is_file() and (folder / CONFIG).is_file() else None


def check_liver_model(folder: str | Path) -> Config:
    """The configuration of a trained liver model folder.

    Raises:
        InputError: not a model folder, not a liver model, or no weights yet.
    """
    folder = Path(folder)
    config, _ = read_model_info(folder)
    if config.preprocess.target != "liver":
        raise InputError(folder, f"is not a liver model (preset {config.preset!r} trains on tumours; "
                                 "train one with 'hepaseg train-liver')")
    if not (folder / WEIGHTS).is_file():
        raise InputError(folder, f"has no {WEIGHTS} (the liver run has not validated yet)")
    return config


def embed_liver_model(liver_model: str | Path, folder: str | Path) -> Path:
    """Copy the liver model folder ``liver_model`` into the model folder ``folder`` as ``liver/``,
    replacing one there atomically; returns its new path.

    Raises:
        InputError: ``liver_model`` is not a trained liver model (``check_liver_model``).
    """
    import os
    import shutil
    import tempfile

    check_liver_model(liver_model)
    target = liver_model_dir(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(target), dir=target.parent))
    try:
        os.chmod(tmp, DIR_MODE)  # mkdtemp makes it 0700
        for name in (WEIGHTS, CONFIG, INFO, LOG):
            if (Path(liver_model) / name).is_file():
                shutil.copy2(Path(liver_model) / name, tmp / name)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def write_model_info(folder: str | Path, config: Config, info: dict[str, Any]) -> None:
    """Write ``config.json`` and ``model.json`` (``info`` plus the format and version)."""
    folder = Path(folder)
    write_text(folder / CONFIG, config.to_json())
    write_json(folder / INFO, {"format": MODEL_FORMAT, "version": MODEL_VERSION, **info})


# the names hepaseg 0.1 stored the score of train.validation_metric under (it was called Jaccard
# whatever the metric): a record's best score and a validation's (history entry, checkpoint best) score
LEGACY_SCORE_KEYS = {"best_jaccard": "best_score", "jaccard": "score"}


def current_score_keys(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` (``model.json``, a checkpoint, a selection task, a training stage's facts) with the
    score keys of earlier versions renamed (``LEGACY_SCORE_KEYS``), in its validation ``history``
    entries and its checkpoint ``best`` too; the one reader of stored validation scores."""
    renamed = {LEGACY_SCORE_KEYS.get(key, key): value for key, value in record.items()}
    if isinstance(renamed.get("best"), dict):
        renamed["best"] = current_score_keys(renamed["best"])
    if isinstance(renamed.get("history"), list):
        renamed["history"] = [current_score_keys(h) if isinstance(h, dict) else h for h in renamed["history"]]
    return renamed


def write_infer(folder: str | Path, infer: InferConfig) -> None:
    """Make ``infer`` the inference settings of the model folder ``folder`` (its ``config.json``), so
    that whoever predicts with the folder later predicts as the caller does; unchanged settings
    leave the file as it is."""
    config = read_config(Path(folder) / CONFIG)
    if config.infer != infer:
        write_text(Path(folder) / CONFIG, config.replace(infer=infer).to_json())


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
    return read_config(config_path), current_score_keys(info)


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
