"""hepaseg: liver tumour segmentation in late hepatobiliary-phase MRI."""

from .config import Config, demo_config, paper_config, preset
from .errors import InputError
from .evaluate import evaluate_dataset
from .executors import LocalExecutor, RayExecutor
from .io import Volume, read_volume, write_mask, write_volume
from .lesions import Detection, detect
from .metrics import dice, jaccard, phi
from .postprocess import postprocess
from .predict import Predictor
from .predict_batch import predict_paths
from .schedule import successive_halving

__version__ = "0.1.0"

# torch-based names, imported on first use so that ``import hepaseg`` stays light
_LAZY = {"RunResult": "train", "UNet": "model", "load_model": "checkpoint", "train_run": "train",
         "run_selection": "select", "SelectionResult": "select"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Config",
    "InputError",
    "Volume",
    "demo_config",
    "paper_config",
    "preset",
    "read_volume",
    "write_mask",
    "write_volume",
    "Detection",
    "detect",
    "dice",
    "evaluate_dataset",
    "jaccard",
    "phi",
    "Predictor",
    "postprocess",
    "predict_paths",
    "RunResult",
    "UNet",
    "load_model",
    "train_run",
    "LocalExecutor",
    "RayExecutor",
    "SelectionResult",
    "run_selection",
    "successive_halving",
]
