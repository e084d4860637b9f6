"""hepaseg: liver tumour segmentation in late hepatobiliary-phase MRI."""

from .config import Config
from .errors import InputError
from .io.volumes import Volume, read_volume, write_mask, write_volume
from .presets import demo_config, paper_config, preset
from .version import __version__


# imported on first use, so that ``import hepaseg`` loads neither torch nor the file-format and
# image libraries (the GPU benchmark runs where some of them are not installed)
_LAZY = {"RunResult": "training.train", "UNet": "model.unet", "load_model": "model.folder",
         "train_run": "training.train", "run_selection": "selection.halving", "SelectionResult": "selection.halving",
         "evaluate_dataset": "evaluation.evaluate", "LocalExecutor": "selection.executors",
         "RayExecutor": "selection.executors", "Detection": "evaluation.matching", "detect": "evaluation.matching",
         "dice": "evaluation.metrics", "jaccard": "evaluation.metrics", "phi": "evaluation.metrics",
         "assd_hd95": "evaluation.surface", "export_nnunet": "data.nnunet",
         "postprocess": "inference.postprocess", "Predictor": "inference.predictor",
         "predict_paths": "inference.batch", "successive_halving": "selection.schedule"}


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
    "assd_hd95",
    "detect",
    "dice",
    "evaluate_dataset",
    "export_nnunet",
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
