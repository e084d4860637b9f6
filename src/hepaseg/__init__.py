"""hepaseg: liver tumour segmentation in late hepatobiliary-phase MRI."""

from .config import Config, demo_config, paper_config, preset
from .errors import InputError
from .io import Volume, read_volume, write_mask, write_volume

__version__ = "0.1.0"

# imported on first use, so that ``import hepaseg`` loads neither torch nor the file-format and
# image libraries (the GPU benchmark runs where some of them are not installed)
_LAZY = {"RunResult": "train", "UNet": "model", "load_model": "checkpoint", "train_run": "train",
         "run_selection": "select", "SelectionResult": "select", "evaluate_dataset": "evaluate",
         "LocalExecutor": "executors", "RayExecutor": "executors", "Detection": "lesions", "detect": "lesions",
         "dice": "metrics", "jaccard": "metrics", "phi": "metrics", "postprocess": "postprocess",
         "Predictor": "predict", "predict_paths": "predict_batch", "successive_halving": "schedule"}


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
