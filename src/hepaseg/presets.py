"""The named configurations: the presets (``paper``, ``demo``, the liver models' ``paper-liver`` and
``demo-liver``), the ablation's architecture variants (issue 18: ``variant_config``, and the
variants of the tumour presets ``paper-2d`` ... ``demo-3d``), one registry ``PRESETS``, and
``resolve_config``: what ``--preset`` / ``--config`` / ``--resume`` mean for every command.

``variant_config(base, variant)`` turns any configuration into one of ``VARIANTS``. Only the model,
the patch output size, the preprocessing z grid and the inference tile change; the iteration budget,
batch, learning rate and schedule, patch sampling, loss, augmentation, post-processing and
evaluation stay the base's.

- ``aunet``: the base itself.
- ``2d``: the base's levels, widths, dropout and batch norm with ``kernel x kernel x 1`` convolutions,
  no 1x1x3 convolution and no pooling in z; one output slice per patch (its input is that slice alone,
  in-plane context only). The inference tile keeps its z: the net treats slices independently.
- ``3d``: ``k x k x k`` convolutions and 2x2x2 pooling at every level, no 1x1x3 convolution, on a grid
  resampled in z to the in-plane spacing (``PreprocessConfig.slice_spacing_mm``). The output patch's z
  covers the base's physical extent on ``TYPICAL_SLICE_MM`` slices (the synthetic cohort's are 3-5 mm),
  as the nearest valid size (``model.shapes.valid_output_size``): the demo's 12 slices of ~4 mm become
  24 slices of 2 mm, the paper's 32 become 128 of 1 mm; the tile likewise. The widths are the base's
  divided by ``WIDTH_DIVISOR_3D`` (see there).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import (
    AugmentConfig,
    Config,
    InferConfig,
    ModelConfig,
    PatchConfig,
    PreprocessConfig,
    SelectConfig,
    TrainConfig,
    read_config,
    resume_conflicts,
)
from .checks import fit_warmup, value_problems
from .errors import InputError
from .model.shapes import check_config as check_model, input_size, valid_output_size

__all__ = ["PRESETS", "VARIANTS", "demo_config", "demo_liver_config", "liver_preset_for", "paper_config",
           "paper_liver_config", "preset", "resolve_config", "synth_liver_config", "variant_config"]


def paper_config() -> Config:
    """The method as METHOD.md writes it."""
    return Config()


def demo_config() -> Config:
    """The same code at a size that trains a useful model in minutes on 2 CPU cores."""
    return Config(
        preset="demo",
        preprocess=PreprocessConfig(inplane_spacing_mm=2.0),
        # 3 levels (one 1x1x3 conv in levels 2-3, no z pooling): 76 x 76 x 18 -> 36 x 36 x 12,
        # 0.14 M parameters; in trials on the 2 mm demo cohort it gave a better test Dice than a
        # 4-level 8..64 net in about half the time (docs/training.md)
        model=ModelConfig(
            widths=(16, 32, 64),
            z_convs=(0, 1, 1),
            pools=((2, 2, 1), (2, 2, 1)),
            dropout=0.1,
        ),
        # a tumour patch centres on a lesion drawn uniformly, then a voxel of it ("lesion"): the 2 mm
        # demo net otherwise rarely sees the small lesions, which were most of its misses (detection
        # F1 0.60 -> 0.72 on the demo's test cases, docs/training.md)
        patch=PatchConfig(output_size=(36, 36, 12), tumor_sampling="lesion"),
        # validate_every divides the selection budgets (750, 1500, 3000), so every rung is ranked on a
        # validation at its end; bf16 autocast where the CPU has bf16 instructions (2x faster). A cosine
        # decay after 100 warm-up steps converges in about half the steps of a constant rate; the
        # validated and kept model is a moving average of the weights (decay 0.995, about the last 200
        # steps): with batch size 2 the raw weights' test Dice swings by 0.1 between validations
        train=TrainConfig(iterations=3000, validate_every=750, ema_decay=0.995, lr_schedule="cosine",
                          warmup_iterations=100, mixed_precision=True, compile=False),
        select=SelectConfig(runs=4, min_iterations=750, max_iterations=3000),
        # the post-processing kernels of 7 x 7 and 3 x 3 voxels the demo has always run, at its 2 mm
        # grid (docs/inference.md)
        infer=InferConfig(tile_output_size=(96, 96, 32), tta=True, border_erosion_mm=14.0, opening_mm=6.0),
    )


def paper_liver_config() -> Config:
    """The liver model (not in the paper, whose livers came from a separate CNN): the aU-Net family
    (widths 8-64, four levels) on a coarse 3 mm in-plane grid of the whole field of view, body-percentile normalisation, target
    the liver mask; post-processing keeps the largest component and fills its holes."""
    return Config(
        preset="paper-liver",
        preprocess=PreprocessConfig(inplane_spacing_mm=3.0, percentile_low=2.0, percentile_high=98.0,
                                    normalisation="body", target="liver"),
        # BN momentum 0.1 (PyTorch's default) and no weight average: with Keras' 0.01 or an average the
        # evaluated state lags the trained one by hundreds of steps, too many for a short run
        model=ModelConfig(widths=(8, 16, 32, 64), z_convs=(0, 1, 1, 1),
                          pools=((2, 2, 1), (2, 2, 2), (2, 2, 1)), dropout=0.1, bn_momentum=0.1),
        patch=PatchConfig(output_size=(44, 44, 16), tumor_fraction=0.7, lesion_fraction=0.5),  # docs/training.md
        train=TrainConfig(iterations=4000, validate_every=500, ema_decay=0.0, rater="liver", lr_schedule="cosine",
                          warmup_iterations=200),
        select=SelectConfig(runs=1, min_iterations=4000, max_iterations=4000),
        infer=InferConfig(tile_output_size=(160, 160, 96), restrict_to_liver=False, border_opening=False,
                          largest_component=True, fill_holes=True),
    )


def demo_liver_config() -> Config:
    """The liver model at the demo's size: a 4 mm grid, a 3-level net of widths 8-32, 1000 iterations."""
    base = paper_liver_config()
    return base.replace(
        preset="demo-liver",
        preprocess=dataclasses.replace(base.preprocess, inplane_spacing_mm=4.0),
        model=ModelConfig(widths=(8, 16, 32), z_convs=(0, 1, 1), pools=((2, 2, 1), (2, 2, 2)), dropout=0.1,
                          bn_momentum=0.1),
        patch=dataclasses.replace(base.patch, output_size=(40, 40, 16)),
        # a cosine decay after 50 warm-up steps: test liver Dice 0.945 against 0.935 at a constant rate
        # (600 iterations); 1000 iterations: 0.955 against 0.939 (docs/benchmarks.md, "Liver model")
        train=dataclasses.replace(base.train, iterations=1000, validate_every=250, batch_size=4, learning_rate=3e-3,
                                  lr_schedule="cosine", warmup_iterations=50, compile=False),
        select=SelectConfig(runs=1, min_iterations=1000, max_iterations=1000),
    )


def synth_liver_config() -> Config:
    """The shipped liver model (issue 28, docs/liver-model.md): trained on the randomised synthetic
    cohort (``synth.spec.randomized_spec``), for any MRI contrast and slice thickness. An isotropic
    4 mm grid (slices resampled: 2-9 mm stacks look alike to the net), a 3-level isotropic 3D net of
    widths 16-64 (receptive field 176 mm); no flips, since the prepared grid is RAS-oriented and the
    liver lies on the patient's right."""
    base = paper_liver_config()
    return base.replace(
        preset="synth-liver",
        preprocess=dataclasses.replace(base.preprocess, inplane_spacing_mm=4.0, slice_spacing_mm=4.0),
        model=ModelConfig(widths=(16, 32, 64), kernel=(3, 3, 3), z_convs=(0, 0, 0), pools=((2, 2, 2), (2, 2, 2)),
                          dropout=0.1, bn_momentum=0.1),
        patch=dataclasses.replace(base.patch, output_size=(32, 32, 32)),
        augment=AugmentConfig(flip_probability=0.0, contrast_range=(0.7, 1.3), brightness_sd=0.2),
        train=dataclasses.replace(base.train, iterations=10000, validate_every=500, batch_size=2, learning_rate=2e-3,
                                  lr_schedule="cosine", warmup_iterations=100, compile=False),
        select=SelectConfig(runs=1, min_iterations=10000, max_iterations=10000),
        infer=dataclasses.replace(base.infer, tile_output_size=(64, 64, 64)),
    )


VARIANTS = ("aunet", "2d", "3d")
TYPICAL_SLICE_MM = 4.0  # the synthetic cohort's slices: 3-5 mm
# The isotropic net's widths: the base's / 2. Measured on the 2-core CPU (1 thread, float32,
# ``training.feasibility.seconds_per_step``, under load from another job): a demo step 0.34-0.36 s,
# demo-3d with half widths (8, 16, 32) 0.68-0.71 s (2x), with the demo's widths 1.36-1.48 s (4x,
# over the 3x allowed). paper-3d at batch 2 with half widths (32 .. 512): an estimated 32 GiB in
# float32, 17 GiB under bf16 (``training.feasibility.step_memory_bytes``; the paper preset's estimate
# of 17 GiB was measured at 15 GiB), so it fits an 80 GB GPU; with the paper's widths 65 / 33 GiB.
WIDTH_DIVISOR_3D = 2


def variant_config(base: Config, variant: str) -> Config:
    """``base`` as the given variant (module docstring); ``"aunet"`` returns ``base`` itself.

    Raises:
        InputError: an unknown variant.
    """
    if variant not in VARIANTS:
        raise InputError(None, f"unknown variant {variant!r} (choose from {', '.join(VARIANTS)})")
    if variant == "aunet":
        return base
    model, patch, infer = base.model, base.patch, base.infer
    levels = len(model.widths)
    kx, ky = model.kernel[0], model.kernel[1]
    if variant == "2d":
        net = dataclasses.replace(model, kernel=(kx, ky, 1), z_convs=(0,) * levels,
                                  pools=tuple((p[0], p[1], 1) for p in model.pools))
        return base.replace(preset=f"{base.preset}-2d", model=net,
                            patch=dataclasses.replace(patch, output_size=(*patch.output_size[:2], 1)))
    if kx != ky:
        raise InputError(None, f"the 3d variant needs a square in-plane kernel, got {model.kernel}")
    net = dataclasses.replace(model, kernel=(kx, kx, kx), z_convs=(0,) * levels, pools=((2, 2, 2),) * (levels - 1),
                              widths=tuple(max(1, w // WIDTH_DIVISOR_3D) for w in model.widths))
    slice_mm = base.preprocess.inplane_spacing_mm
    scale = TYPICAL_SLICE_MM / slice_mm

    def size(s: tuple[int, int, int]) -> tuple[int, int, int]:
        return valid_output_size(net, (s[0], s[1], round(s[2] * scale)))

    return base.replace(
        preset=f"{base.preset}-3d", model=net,
        preprocess=dataclasses.replace(base.preprocess, slice_spacing_mm=slice_mm),
        patch=dataclasses.replace(patch, output_size=size(patch.output_size)),
        infer=dataclasses.replace(infer, tile_output_size=size(infer.tile_output_size)))


def _variant_preset(base: Any, variant: str) -> Any:
    return lambda: variant_config(base(), variant)


# the ablation's variants of the tumour presets: paper-2d, paper-3d, demo-2d, demo-3d
PRESETS = {"paper": paper_config, "demo": demo_config,
           "paper-liver": paper_liver_config, "demo-liver": demo_liver_config, "synth-liver": synth_liver_config,
           **{f"{name}-{v}": _variant_preset(base, v) for name, base in (("paper", paper_config), ("demo", demo_config))
              for v in VARIANTS if v != "aunet"}}


def liver_preset_for(config: Config) -> Config:
    """The liver model's preset that goes with a tumour model's: ``demo-liver`` for the demo, else ``paper-liver``."""
    return demo_liver_config() if config.preset.startswith("demo") else paper_liver_config()


def preset(name: str) -> Config:
    """The named preset (``paper``, ``demo``, their variants ``paper-2d`` ... ``demo-3d``; ``paper-liver``,
    ``demo-liver`` for the liver model)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise InputError(None, f"unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None


def check_config(config: Config, where: str | Path | None = None, what: str = "configuration") -> Config:
    """``config`` itself, once every stage's values (``checks.value_problems``) and the network's shapes
    (the model's lists, a valid patch output size) are checked, so that no stage fails on them later.

    Raises:
        InputError: naming ``where``, with every problem found, e.g. ``train.warmup_iterations must lie
            in 0..39, got 100``.
    """
    problems = value_problems(config)
    try:
        check_model(config.model)
    except InputError as exc:
        problems.append(exc.message)
    else:
        try:  # the tile is made valid where it is used (inference.tiling); a training patch must be
            input_size(config.model, config.patch.output_size)
        except InputError:
            problems.append(f"patch.output_size {tuple(config.patch.output_size)} is not an output size of the "
                            f"network (the nearest one below: {valid_output_size(config.model, config.patch.output_size)})")
    if problems:
        raise InputError(where, f"{what} (preset {config.preset!r}): " + "; ".join(problems))
    return config


def resolve_config(preset_name: str | None = None, config_file: str | Path | None = None,
                   resumed: Config | None = None, where: str | Path | None = None, scope: str = "study",
                   iterations: int | None = None, note: Callable[[str], None] | None = None) -> Config:
    """The configuration a command runs with (``--preset`` / ``--config`` / ``--resume``, ``--iterations``),
    checked (``check_config``) before any work starts.

    ``--config FILE`` if given, else ``--preset NAME``, else the resumed run's own (``resumed``),
    else the paper preset; ``iterations`` (``--iterations``) sets ``train.iterations``. A warm-up made for
    a run of another length, or one that does not fit the run, is shortened by one rule
    (``checks.fit_warmup``: at most a tenth of the run) and ``note`` (default: stderr) says so. On
    resume, a preset or file that differs from the resumed run's configuration in a field that decides a
    run of ``scope`` (``resume_conflicts``: ``training`` may be trained further, a ``study`` may switch its
    selection check) is an error naming ``where``.

    Raises:
        InputError: both a preset and a file, an unknown preset, an unreadable file, a configuration
            that differs from the resumed run's, or one with a problem (``check_config``).
    """
    if preset_name is not None and config_file is not None:
        raise InputError(None, "give --preset or --config, not both")
    if preset_name is None and config_file is None:
        config = resumed if resumed is not None else preset("paper")
    else:
        config = _conflict_free(read_config(config_file) if config_file is not None else preset(preset_name),
                                resumed, where, scope, "--config" if config_file is not None else "--preset")
    fitted = fit_warmup(config.train, iterations)
    if fitted.warmup_iterations != config.train.warmup_iterations:
        (note or _to_stderr)(f"note: train.warmup_iterations {config.train.warmup_iterations} -> "
                             f"{fitted.warmup_iterations}, a tenth of the run's {fitted.iterations} iterations")
    config = config.replace(train=fitted)
    return check_config(config, where if config_file is None else config_file)


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr)


def _conflict_free(config: Config, resumed: Config | None, where: str | Path | None, scope: str,
                   option: str) -> Config:
    """``config``, unless it differs from the resumed run's in what decides a run of ``scope``."""
    if resumed is not None:
        changed = resume_conflicts(scope, resumed, config)
        if changed:
            raise InputError(where, f"was started with another configuration (preset {resumed.preset!r}; differs "
                                    f"in {', '.join(changed)}); resume it without {option}")
    return config
