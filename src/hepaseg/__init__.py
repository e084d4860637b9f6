"""hepaseg: liver tumour segmentation in late hepatobiliary-phase MRI."""

from .config import Config, demo_config, paper_config, preset
from .errors import InputError
from .io import Volume, read_volume, write_mask, write_volume

__version__ = "0.1.0"

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
]
