"""Training the liver model: the one training loop on a liver-target cache (``hepaseg train-liver``).

``train_liver`` pre-processes a manifest into ``<out>/prep`` with the liver configuration
(``config.preprocess.target == "liver"``: coarse whole-field grid, body normalisation, the liver
mask as target) and trains one run from ``seed`` into ``<out>`` (``checkpoint.pt``, ``model/``), with
the training cases' liver masks; the validation cases' livers select the best state. Like any run,
it is resumable and continues from its checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..data.preprocess import preprocess_dataset
from ..errors import InputError
from ..synth import randomized_spec, write_cohort
from .train import RunResult, train_run

LIVER_PREP = "prep"
RANDOMIZED_COHORT = "cohort"


def train_liver(manifest: str | Path, out: str | Path, config: Config, seed: int = 0,
                device: str = "auto", resume: bool = False, progress: bool = True,
                workers: int | None = None) -> RunResult:
    """Pre-process ``manifest`` for the liver model and train it into ``out`` (``out/model`` is the result).

    Raises:
        InputError: ``config`` is not a liver configuration, or any error of pre-processing or training.
    """
    prep = prepare_liver(manifest, out, config, workers, progress)
    return train_run(prep, out, config, seed, device=device, resume=resume, progress=progress)


def prepare_liver(manifest: str | Path, out: str | Path, config: Config, workers: int | None = None,
                  progress: bool = True) -> Path:
    """The liver model's prepared-case cache ``<out>/prep`` (incremental, as any pre-processing); its path.

    Raises:
        InputError: ``config`` is not a liver configuration, or any error of pre-processing.
    """
    if config.preprocess.target != "liver" or config.train.rater != "liver":
        raise InputError(None, f"preset {config.preset!r} is not a liver-model configuration "
                               "(needs preprocess.target and train.rater 'liver', as in 'demo-liver')")
    prep = Path(out) / LIVER_PREP
    preprocess_dataset(manifest, prep, config.preprocess, workers=workers, progress=progress)
    return prep


def randomized_manifest(out: str | Path, seed: int, workers: int | None = None, progress: bool = True) -> Path:
    """The manifest of the randomised synthetic cohort ``<out>/cohort`` (``synth.randomized_spec``,
    ``seed``), written first unless it is there: the shipped liver model's training data."""
    manifest = Path(out) / RANDOMIZED_COHORT / "dataset.json"
    if not manifest.is_file():
        write_cohort(manifest.parent, seed=seed, spec=randomized_spec(), workers=workers, progress=progress)
    return manifest
