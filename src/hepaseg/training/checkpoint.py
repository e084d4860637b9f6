"""The training checkpoint: ``<run>/checkpoint.pt``, everything a resume needs, written atomically.

It is ``torch.save`` of plain dicts, tensors, numbers and strings, read back with
``torch.load(weights_only=True)``: no pickled code. The run's model folder (``<run>/model/``,
everything ``predict`` needs) is ``hepaseg.model.folder``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..io.atomic import atomic_path
from ..model.folder import current_score_keys, require_format

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = "hepaseg-checkpoint"
# 2: the sampler's state is the index of the next batch (batch i drawn from the seed and i alone); version 1
# held the state of one generator drawn in sequence, whose batches this version cannot continue
CHECKPOINT_VERSION = 2
RETIRED = {1: "written by an earlier hepaseg, whose batch sequence this version does not continue "
              "(checkpoint version 1); train the run again in a new folder"}


def save_checkpoint(run_dir: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plain containers of tensors / numbers / strings) to ``run_dir/checkpoint.pt``."""
    path = Path(run_dir) / CHECKPOINT
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, tmp)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``.

    Raises:
        InputError: the file is unreadable, truncated, not a hepaseg checkpoint, or of another version
            (version 1: one line saying why it cannot be continued).
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(path, "checkpoint not found") from None
    except Exception as exc:  # torch raises many types for damaged or foreign files
        raise InputError(path, f"corrupt or unreadable checkpoint ({type(exc).__name__})") from exc
    require_format(path, state, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "training checkpoint", RETIRED)
    return current_score_keys(state)


def trained_iterations(run_dir: str | Path) -> int:
    """The iterations the checkpoint in ``run_dir`` has trained (0 without a checkpoint)."""
    path = Path(run_dir) / CHECKPOINT
    return int(load_checkpoint(path)["iteration"]) if path.exists() else 0
