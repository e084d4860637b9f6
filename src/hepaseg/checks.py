"""Which configuration values are valid: every rule on a field's value has its owner here.

The commands check a whole configuration before any work starts (``presets.check_config``, which adds
the network's shape arithmetic); the stages that take a part of it (a training run, a selection, the
patch sampler) check that part with the same functions, so a library call fails the same way.
Each ``*_problems`` function returns one sentence per problem, naming the field.
"""

from __future__ import annotations

import dataclasses

from .config import Config, InferConfig, PatchConfig, SelectConfig, TrainConfig

SCHEDULES = ("constant", "cosine", "linear")  # train.lr_schedule (training.train.learning_rate_at)
METRICS = ("jaccard", "dice", "global_dice")  # train.validation_metric (training.validation)
TUMOR_SAMPLINGS = ("voxel", "lesion")  # patch.tumor_sampling (training.sampling)
CONNECTIVITIES = (6, 18, 26)  # infer.lesion_connectivity, evaluate.connectivity (data.components)
WARMUP_SHARE = 10  # a warm-up made for a run of another length becomes at most 1 / WARMUP_SHARE of the run


def train_problems(tc: TrainConfig) -> list[str]:
    """The problems of a training run's settings."""
    problems = []
    if tc.iterations < 1:
        problems.append(f"train.iterations must be >= 1, got {tc.iterations}")
    elif not 0 <= tc.warmup_iterations < tc.iterations:
        problems.append(f"train.warmup_iterations must lie in 0..{tc.iterations - 1}, got {tc.warmup_iterations}")
    if tc.lr_schedule not in SCHEDULES:
        problems.append(f"unknown train.lr_schedule {tc.lr_schedule!r} (choose from {', '.join(SCHEDULES)})")
    if tc.validation_metric not in METRICS:
        problems.append(f"unknown train.validation_metric {tc.validation_metric!r} (choose from {', '.join(METRICS)})")
    if not 0.0 <= tc.ema_decay < 1.0:
        problems.append(f"train.ema_decay must lie in [0, 1), got {tc.ema_decay}")
    for name in ("batch_size", "validate_every"):
        if getattr(tc, name) < 1:
            problems.append(f"train.{name} must be >= 1, got {getattr(tc, name)}")
    if not isinstance(tc.batch_producers, int) or tc.batch_producers < 0:
        problems.append(f"train.batch_producers must be an int >= 0 (0: chosen by the device), got {tc.batch_producers!r}")
    return problems


def patch_problems(pc: PatchConfig) -> list[str]:
    """The problems of the patch sampling settings."""
    problems = []
    if pc.tumor_sampling not in TUMOR_SAMPLINGS:
        problems.append(f"unknown patch.tumor_sampling {pc.tumor_sampling!r} (choose from {', '.join(TUMOR_SAMPLINGS)})")
    for name in ("tumor_fraction", "lesion_fraction"):
        if not 0.0 <= getattr(pc, name) <= 1.0:
            problems.append(f"patch.{name} must lie in [0, 1], got {getattr(pc, name)}")
    return problems


def select_problems(sc: SelectConfig) -> list[str]:
    """The problems of the successive-halving settings."""
    problems = []
    if sc.runs < 1:
        problems.append(f"select.runs must be >= 1, got {sc.runs}")
    if sc.min_iterations < 1:
        problems.append(f"select.min_iterations must be >= 1, got {sc.min_iterations}")
    if sc.max_iterations < sc.min_iterations:
        problems.append(f"select.max_iterations ({sc.max_iterations}) must be >= select.min_iterations "
                        f"({sc.min_iterations})")
    if sc.eta < 2:
        problems.append(f"select.eta must be >= 2, got {sc.eta}")
    return problems


def infer_problems(ic: InferConfig) -> list[str]:
    """The problems of the inference settings."""
    problems = []
    if not 0.0 <= ic.threshold < 1.0:
        problems.append(f"infer.threshold must lie in [0, 1), got {ic.threshold}")
    for name in ("border_erosion_mm", "opening_mm"):
        if getattr(ic, name) <= 0:
            problems.append(f"infer.{name} must be > 0 mm, got {getattr(ic, name)}")
    if ic.lesion_connectivity not in CONNECTIVITIES:
        problems.append(f"infer.lesion_connectivity must be one of {CONNECTIVITIES}, got {ic.lesion_connectivity}")
    return problems


def value_problems(config: Config) -> list[str]:
    """Every problem of a configuration's values (the network's shapes: ``presets.check_config``)."""
    problems = (train_problems(config.train) + patch_problems(config.patch) + select_problems(config.select)
                + infer_problems(config.infer))
    if config.evaluate.connectivity not in CONNECTIVITIES:
        problems.append(f"evaluate.connectivity must be one of {CONNECTIVITIES}, got {config.evaluate.connectivity}")
    return problems


def fit_warmup(tc: TrainConfig, iterations: int | None = None) -> TrainConfig:
    """``tc`` for a run of ``iterations`` (default: its own): a warm-up made for a run of another length
    (``--iterations``), or one as long as the run or longer, becomes at most a tenth of the run
    (``min(warmup, iterations // 10)``); otherwise the warm-up is the configuration's own."""
    total = tc.iterations if iterations is None else int(iterations)
    warmup = tc.warmup_iterations
    if total != tc.iterations or warmup >= total:
        warmup = min(warmup, max(total, 0) // WARMUP_SHARE)
    return dataclasses.replace(tc, iterations=total, warmup_iterations=warmup)
