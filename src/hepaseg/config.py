"""Configuration: one frozen dataclass per pipeline stage, the JSON round-trip, and which fields decide
which stage (``DECIDES``). The presets and the ablation's variants are in ``presets``.

A variant of the method is a new configuration value, never a subclass. ``Config.to_json`` /
``Config.from_json`` store the full configuration beside every model, so a model folder says
exactly how it was made. The values follow ``shared/METHOD.md``; units are in the field names.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError

Size3 = tuple[int, int, int]  # (x, y, z) voxels


@dataclass(frozen=True)
class PreprocessConfig:
    """METHOD.md section 2: in-plane resampling and liver-percentile normalisation."""

    inplane_spacing_mm: float = 1.0
    slice_spacing_mm: float | None = None  # z resampled to this spacing (the isotropic 3D variant); None: as scanned
    percentile_low: float = 2.0  # mapped to 0
    percentile_high: float = 98.0  # mapped to 1; values outside are not clipped
    # where the percentiles come from: "liver" (inside the liver mask, the paper) or "body" (inside the
    # body: voxels above the image's Otsu threshold; for the liver model, which has no liver mask yet)
    normalisation: str = "liver"
    # what the cache trains: "tumor" (target: each rater's tumour mask; region: the liver) or "liver"
    # (target: the liver mask, stored as rater "liver"; region: the whole field of view)
    target: str = "tumor"


@dataclass(frozen=True)
class ModelConfig:
    """METHOD.md section 4: the anisotropic U-Net (aU-Net) and its variants.

    ``kernel`` is the main convolution (two per block, both paths); ``z_convs[l]`` extra
    (1, 1, 3) convolutions per block at level ``l``; ``pools[l]`` the pooling from level l to l+1.
    """

    widths: tuple[int, ...] = (64, 128, 256, 512, 1024)
    kernel: Size3 = (3, 3, 1)
    z_convs: tuple[int, ...] = (0, 0, 1, 1, 1)
    pools: tuple[Size3, ...] = ((2, 2, 2), (2, 2, 2), (2, 2, 1), (2, 2, 1))
    dropout: float = 0.5
    in_channels: int = 1
    bn_momentum: float = 0.01  # torch convention; Keras' default momentum 0.99, as the paper's stack used
    bn_eps: float = 1e-3  # Keras' default


@dataclass(frozen=True)
class PatchConfig:
    """METHOD.md section 3: patch sampling (output size; the input size follows from the model)."""

    output_size: Size3 = (52, 52, 32)
    tumor_fraction: float = 0.9  # share of patches with a tumour voxel in the output region
    # a tumour patch's voxel: "voxel" (uniform over the case's tumour voxels: large lesions dominate) or "lesion"
    # (a 26-connected lesion uniformly, then a voxel of it). METHOD.md fixes only the 90 % share, not this choice.
    tumor_sampling: str = "voxel"
    lesion_fraction: float = 0.0  # liver model: share of patches around a lesion (tumours at its edge are liver)
    loss_dilation_mm: float = 10.0  # liver weight mask: in-plane dilation
    loss_dilation_slices: int = 1  # liver weight mask: dilation along z


@dataclass(frozen=True)
class AugmentConfig:
    """METHOD.md section 3: flips, contrast alpha ~ U[lo, hi), brightness beta ~ N(0, sd)."""

    flip_probability: float = 0.5
    contrast_range: tuple[float, float] = (0.75, 1.25)
    brightness_sd: float = 0.25


@dataclass(frozen=True)
class TrainConfig:
    """METHOD.md section 5: one training run."""

    iterations: int = 80_000
    batch_size: int = 2
    learning_rate: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-7
    validate_every: int = 500
    # 0: validate and keep the trained weights (the paper); d > 0: an exponential moving average of
    # weights and BN statistics, w_avg <- d * w_avg + (1 - d) * w after each step, is validated and kept
    ema_decay: float = 0.0
    # learning-rate schedule over the run's full length ``iterations`` (for a selection run: the largest
    # budget, so a run continued from one rung to the next follows the curve of a run trained straight):
    # "constant" (the paper), "cosine" or "linear" decay towards 0 after ``warmup_iterations`` of linear
    # warm-up; ``training.train.learning_rate_at`` is the formula
    lr_schedule: str = "constant"
    warmup_iterations: int = 0
    # the score that keeps the best validated state and ranks A1's runs: "jaccard" (the paper: mean
    # per-case Jaccard), "dice" (mean per-case Dice) or "global_dice" (Dice of all validation voxels pooled)
    validation_metric: str = "jaccard"
    log_every: int = 50  # iterations per line of the training log
    rater: str = "R1"
    mixed_precision: bool = True  # bf16 autocast on CUDA and on CPUs with bf16 instructions (model.device.native_bf16)
    channels_last: bool = True  # channels-last 3D memory format (faster on CUDA and x86 CPUs)
    compile: bool = True  # torch.compile on CUDA where it works
    # processes that draw the batches ahead (training.producers): 0 picks (1 on the CPU, a quarter of the
    # cores, 1 to 4, on a GPU); the batch sequence is the same for every number, so it decides no result
    batch_producers: int = 0


@dataclass(frozen=True)
class SelectConfig:
    """METHOD.md section 6: successive halving over seeds (A1).

    ``runs`` seeds from ``first_seed`` on train to ``min_iterations``; after each rung the best
    1 / ``eta`` of them continue to ``eta`` times the budget, up to ``max_iterations``.
    ``check_runs``: the study's selection check predicts the test cases with every run (each seed
    at its kept state, and A2) to set each run's test score against its validation score (it costs
    ``runs - 1`` more predictions of the test split); off, that stage only records that it is off.
    It decides nothing the selection does, so it is not part of A1's fingerprint.
    """

    runs: int = 16
    min_iterations: int = 5_000
    max_iterations: int = 80_000
    eta: int = 2
    first_seed: int = 0
    check_runs: bool = True


@dataclass(frozen=True)
class InferConfig:
    """METHOD.md section 7: tiled prediction and post-processing.

    The tile size is voxels of the prepared grid; the post-processing kernels are in mm (converted to
    voxels of the prepared grid's in-plane spacing by ``inference.postprocess``) and act in-plane,
    slice by slice.
    """

    tile_output_size: Size3 = (244, 244, 96)
    threshold: float = 0.5
    restrict_to_liver: bool = True
    border_opening: bool = True
    # the side of the in-plane square the liver is eroded by to find its border band, mm (METHOD.md: 7 x 7
    # voxels of the 1 mm grid, a band 3 mm wide), and of the square the tumour is opened by inside that band
    border_erosion_mm: float = 7.0
    opening_mm: float = 3.0
    tta: bool = False
    lesion_connectivity: int = 26  # 6, 18 or 26: the lesion table's 3D components (as EvalConfig.connectivity)
    largest_component: bool = False  # keep only the largest 26-connected component (the liver model)
    fill_holes: bool = False  # fill enclosed holes, in 3D (the liver model)
    # with a predicted liver: predict inside it dilated in-plane by this many mm and add the tumours that
    # touch it to it (inference.liver.extend_liver_by_tumours); 0: off. A given liver is never changed.
    auto_liver_margin_mm: float = 10.0


@dataclass(frozen=True)
class EvalConfig:
    """METHOD.md section 8: evaluation against several raters."""

    phi_alpha: float = 0.1  # phi's alpha (METHOD.md section 8)
    detection_dice_threshold: float = 0.2  # a correspondence counts as detected above this Dice
    connectivity: int = 26  # 6, 18 or 26: lesions are 3D connected components
    fdr: float = 0.05  # Benjamini-Hochberg false discovery rate within each family of tests


# (stage, field, default): fields added after configurations were first stored (``Config.to_dict``); not
# auto_liver_margin_mm, which changes what automatic predictions are, so their fingerprints must change
OMITTED_AT_DEFAULT = (("preprocess", "slice_spacing_mm", None), ("patch", "tumor_sampling", "voxel"),
                      ("patch", "lesion_fraction", 0.0), ("train", "batch_producers", 0))


@dataclass(frozen=True)
class Config:
    """Everything that decides a result. ``preset`` names where it came from."""

    preset: str = "paper"
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    patch: PatchConfig = field(default_factory=PatchConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; the fields of ``OMITTED_AT_DEFAULT`` only when not at their default, so that
        the configurations (and every fingerprint of them) written before those fields existed read and
        hash as before."""
        data = dataclasses.asdict(self)
        for stage, name, default in OMITTED_AT_DEFAULT:
            if data[stage][name] == default:
                del data[stage][name]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        return _build(cls, _kernels_in_mm(data), "config")

    @classmethod
    def from_json(cls, text: str) -> Config:
        return cls.from_dict(json.loads(text))

    def replace(self, **stages: Any) -> Config:
        """A copy with whole stages replaced, e.g. ``cfg.replace(train=...)``."""
        return dataclasses.replace(self, **stages)


# hepaseg 0.1's post-processing kernels, in voxels of the prepared grid -> today's fields, in mm
LEGACY_KERNELS = {"border_erosion_size": "border_erosion_mm", "opening_size": "opening_mm"}


def _kernels_in_mm(data: Any) -> Any:
    """A stored configuration with hepaseg 0.1's ``infer.border_erosion_size`` / ``opening_size`` (voxels)
    given as today's mm fields (times the prepared grid's in-plane spacing), so that it predicts as before."""
    infer = data.get("infer") if isinstance(data, dict) else None
    if not isinstance(infer, dict) or not set(LEGACY_KERNELS) & set(infer):
        return data
    spacing = data.get("preprocess", {}).get("inplane_spacing_mm", PreprocessConfig.inplane_spacing_mm)
    infer = {LEGACY_KERNELS.get(k, k): v * spacing if k in LEGACY_KERNELS else v for k, v in infer.items()}
    return {**data, "infer": infer}


def _build(cls: type, data: Any, where: str) -> Any:
    """Rebuild a (nested) frozen dataclass from plain JSON values; lists become tuples."""
    if not isinstance(data, dict):
        raise InputError(None, f"{where}: expected an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputError(None, f"{where}: unknown field(s) {', '.join(unknown)}")
    kwargs = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        else:
            kwargs[name] = _tuples(value)
    return cls(**kwargs)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def with_assignments(config: Config, assignments: list[str]) -> Config:
    """``config`` with ``stage.field=JSON`` assignments, e.g. ``train.iterations=3000`` (the benchmarks'
    ``--set``); InputError for an unknown field or a value that is not JSON."""
    data = dataclasses.asdict(config)
    for item in assignments:
        key, _, value = item.partition("=")
        stage, _, name = key.partition(".")
        if stage not in data or not isinstance(data[stage], dict) or name not in data[stage]:
            raise InputError(None, f"unknown configuration field {key!r}")
        try:
            data[stage][name] = json.loads(value)
        except json.JSONDecodeError:
            raise InputError(None, f"{key}: {value!r} is not a JSON value") from None
    return Config.from_dict(data)


def read_config(path: str | Path) -> Config:
    """A configuration from a JSON file (as ``config.json`` in a model folder).

    Raises:
        InputError: unreadable file, invalid JSON, or fields that do not fit.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, f"cannot read the configuration ({exc.strerror})") from None
    try:
        return Config.from_json(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON ({exc.msg}, line {exc.lineno})") from None
    except (InputError, TypeError) as exc:
        raise InputError(path, f"incompatible configuration ({exc})") from None


def differences(a: Config, b: Config) -> list[str]:
    """The dotted names of the fields in which two configurations differ, e.g. ``train.iterations``."""
    def walk(x: dict[str, Any], y: dict[str, Any], prefix: str) -> list[str]:
        out = []
        for key in list(x) + [k for k in y if k not in x]:  # a field left out of one (to_dict) differs too
            if isinstance(x.get(key), dict):
                out += walk(x[key], y[key], f"{prefix}{key}.")
            elif x.get(key) != y.get(key):
                out.append(prefix + key)
        return out

    return walk(a.to_dict(), b.to_dict(), "")


# Which configuration fields decide which stage's result, in one table: a stage's fingerprint covers
# them (``stage_values``) and a resumed stage refuses a configuration that differs in them
# (``resume_conflicts``). An entry names a whole block ("model") or one field ("select.eta"). Training
# validates with the inference tile and threshold, so those two decide the kept state as well.
DECIDES: dict[str, tuple[str, ...]] = {
    "preprocess": ("preprocess",),
    "training": ("preprocess", "model", "patch", "augment", "train", "infer.tile_output_size", "infer.threshold"),
    "selection": ("select.runs", "select.min_iterations", "select.max_iterations", "select.eta", "select.first_seed"),
    "predict": ("infer",),
    "evaluate": ("evaluate",),
    "selection_check": ("select.check_runs",),
}
# What a resume may change, by scope (a scope is a stage, or "study": every stage): a run may be trained
# further; a study's selection check may be turned on or off. A selection's runs are "training" too.
SCOPES: dict[str, tuple[str, ...]] = {"training": ("training",), "selection": ("training", "selection"),
                                      "study": tuple(DECIDES)}
MAY_CHANGE_ON_RESUME: dict[str, tuple[str, ...]] = {"training": ("train.iterations",), "selection": (),
                                                    "study": ("select.check_runs",)}
# Fields that decide how fast a stage runs, never what it makes: in no fingerprint, free to change on resume
SPEED_ONLY = ("train.batch_producers",)


def stage_values(config: Config, stage: str) -> dict[str, Any]:
    """The values of the fields that decide ``stage`` (``DECIDES``, less ``SPEED_ONLY``), by block, for its
    fingerprint, e.g. ``{"evaluate": {...}}`` or ``{"select": {"runs": 16, ...}}``."""
    data, out = config.to_dict(), {}
    for name in SPEED_ONLY:
        block, _, field_name = name.partition(".")
        data[block].pop(field_name, None)
    for name in DECIDES[stage]:
        block, _, field_name = name.partition(".")
        if field_name:
            out.setdefault(block, {})[field_name] = data[block].get(field_name)
        else:
            out[block] = data[block]
    return out


def resume_conflicts(scope: str, stored: Config, config: Config) -> list[str]:
    """The dotted fields in which ``config`` differs from the ``stored`` one of a run of ``scope``
    (``SCOPES``) and which decide it, less what a resume of it may change (``MAY_CHANGE_ON_RESUME``,
    ``SPEED_ONLY``)."""
    decisive = [name for stage in SCOPES[scope] for name in DECIDES[stage]]
    return [name for name in differences(stored, config) if name not in MAY_CHANGE_ON_RESUME[scope] + SPEED_ONLY
            and any(name == d or name.startswith(d + ".") for d in decisive)]
