"""Training patches (METHOD.md section 3): 90 % tumour / 10 % liver patches, valid-conv crops.

A patch is an input crop of the image (output region plus the network's margin on each side,
padded past the volume border) with the tumour target and the loss weight mask (the liver dilated
by ``loss_dilation_mm`` in-plane and ``loss_dilation_slices`` in z, zero outside the volume) on the
output region. Arrays are (x, y, z) voxels of the prepared grid; a batch is (B, 1, X, Y, Z).

Batch ``i`` of a run with seed ``s`` is a function of ``(s, i)`` alone: its every random choice
comes from its own generator, ``numpy.random.default_rng(SeedSequence([s, i]))`` (``batch_rng``):
per patch, its position first, then its augmentation parameters (``augment.draw_params``). So
batches can be drawn in any order, by any number of producers (``producers.Prefetcher``), and the
sampler's state is just the index of the next batch (``state()`` / ``set_state()``): a resumed run
draws the same patches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..checks import patch_problems
from ..config import AugmentConfig, PatchConfig, Size3
from ..data.morphology import dilate_liver, dilation_reach
from ..errors import InputError
from ..model.shapes import IMAGE_PAD_MODE, crop
from .augment import AugmentParams, draw_params

@dataclass(frozen=True)
class Batch:
    """One training batch (numpy, host memory).

    image: (B, 1, X, Y, Z) float32 input patches, not yet augmented.
    target, weight: (B, 1, x, y, z) uint8 tumour labels and loss weight mask on the output region.
    augment: one parameter set per patch, applied later (on the training device).
    index: the batch's number in the run's sequence (0-based).
    """

    image: NDArray[np.float32]
    target: NDArray[np.uint8]
    weight: NDArray[np.uint8]
    augment: tuple[AugmentParams, ...]
    index: int

    @property
    def sampler_state(self) -> int:
        """The sampler's state right after this batch: the index of the next one."""
        return self.index + 1


def batch_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of batch ``index`` of a run with ``seed`` (both >= 0)."""
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


class CaseArrays:
    """What sampling needs of one prepared case: memory-mapped arrays, tumour voxels, liver box.

    ``tumor_voxels`` (n, 3) are the tumour voxels; with ``by_lesion`` they are grouped by 26-connected
    lesion, lesion ``l`` owning rows ``lesion_starts[l]:lesion_starts[l + 1]``. With ``with_lesions``
    (the liver model), ``lesion_voxels`` (m, 3) are the voxels of the other raters' tumour masks
    (their union); else they are empty.
    """

    def __init__(self, case: Any, rater: str, by_lesion: bool = False, with_lesions: bool = False) -> None:
        self.id = case.id
        self.spacing = tuple(case.spacing)
        self.image = case.image()
        self.liver = case.liver()
        self.tumor = case.tumor(rater)
        if self.image.shape != self.liver.shape or self.image.shape != self.tumor.shape:
            raise InputError(case.folder, f"case {case.id}: image, liver and tumour shapes differ")
        self.tumor_voxels = np.argwhere(self.tumor > 0).astype(np.int32)
        self.lesion_starts: NDArray[np.int64] | None = None
        if by_lesion:
            self.lesion_starts, order = _lesion_starts(self.tumor, self.tumor_voxels)
            self.tumor_voxels = self.tumor_voxels[order]
        others = [r for r in case.raters if r != rater] if with_lesions else []
        union = np.logical_or.reduce([np.asarray(case.tumor(r)) > 0 for r in others]) if others else None
        self.lesion_voxels = np.zeros((0, 3), np.int32) if union is None else np.argwhere(union).astype(np.int32)
        live = np.argwhere(self.liver > 0)
        if not len(live):
            raise InputError(case.folder, f"case {case.id}: liver mask is empty")
        self.liver_lo = live.min(axis=0)
        self.liver_hi = live.max(axis=0) + 1


@dataclass(frozen=True)
class PatchPosition:
    """A drawn patch: its case, the (x, y, z) start of its output region, and its kind."""

    case: CaseArrays
    out_start: NDArray[np.int64]
    tumor_patch: bool


class PatchSampler:
    """Draws training batches from prepared cases, batch ``i`` from ``batch_rng(seed, i)``.

    Args:
        cases: ``PreparedCase`` objects (``preprocess.load_prepared(...).split("train")``).
        rater: whose tumour masks are the target.
        output_size: (x, y, z) output patch of the network; margins: context voxels per side.
        patch, augment: METHOD.md section 3 settings.
        seed: the run's seed (>= 0); all randomness of sampling and augmentation comes from it.

    ``arguments`` are the constructor's arguments, for building the same sampler in another process.
    """

    def __init__(self, cases: Sequence[Any], rater: str, output_size: Size3, margins: Size3,
                 patch: PatchConfig, augment: AugmentConfig, seed: int) -> None:
        self.arguments = (tuple(cases), rater, tuple(output_size), tuple(margins), patch, augment, seed)
        if not cases:
            raise InputError(None, "no training case (the cache has no case of split 'train')")
        problems = patch_problems(patch)
        if problems:
            raise InputError(None, "; ".join(problems))
        self.cases = [CaseArrays(c, rater, by_lesion=patch.tumor_sampling == "lesion",
                                 with_lesions=patch.lesion_fraction > 0) for c in cases]
        self.tumor_cases = [c for c in self.cases if len(c.tumor_voxels)]
        self.lesion_cases = [c for c in self.cases if len(c.lesion_voxels)]
        self.output_size = tuple(output_size)
        self.margins = tuple(margins)
        self.patch = patch
        self.augment = augment
        self.seed = seed
        self.next_index = 0

    @property
    def input_size(self) -> Size3:
        return tuple(o + 2 * m for o, m in zip(self.output_size, self.margins))  # type: ignore[return-value]

    def state(self) -> int:
        """The index of the next batch ``next_batch`` draws (a plain int: safe for
        ``torch.load(weights_only=True)``)."""
        return self.next_index

    def set_state(self, state: int) -> None:
        """Continue at batch ``state`` (what ``state()`` returned).

        Raises:
            InputError: ``state`` is not a batch index (e.g. an earlier hepaseg's generator state).
        """
        if not isinstance(state, int) or isinstance(state, bool) or state < 0:
            raise InputError(None, f"sampler state must be a batch index (an int >= 0), got {type(state).__name__}")
        self.next_index = state

    def next_batch(self, batch_size: int) -> Batch:
        """Draw batch ``state()`` and move on to the next one."""
        batch = self.batch(self.next_index, batch_size)
        self.next_index += 1
        return batch

    def batch(self, index: int, batch_size: int) -> Batch:
        """Batch ``index`` of ``batch_size`` patches (per patch: its position, then its augmentation
        parameters, from ``batch_rng(seed, index)``); it does not change the sampler."""
        rng = batch_rng(self.seed, index)
        images, targets, weights, params = [], [], [], []
        for _ in range(batch_size):
            position = self.draw_position(rng)
            image, target, weight = self.extract(position)
            images.append(image)
            targets.append(target)
            weights.append(weight)
            params.append(draw_params(rng, self.augment))
        return Batch(np.stack(images)[:, None], np.stack(targets)[:, None], np.stack(weights)[:, None],
                     tuple(params), index)

    def draw_position(self, rng: np.random.Generator) -> PatchPosition:
        """Draw a patch: with probability ``lesion_fraction`` (where > 0) around a random lesion voxel
        (of a random case that has one), else with probability ``tumor_fraction`` around a random
        tumour voxel (of a random case that has one; ``patch.tumor_sampling`` "lesion": of a random
        lesion of it), else around a random liver voxel (of a random case); the voxel lands at a
        random place of the output region. A ``lesion_fraction`` of 0 draws no number for it."""
        lesion_patch = self.patch.lesion_fraction > 0 and rng.random() < self.patch.lesion_fraction
        if lesion_patch and self.lesion_cases:
            case = self.lesion_cases[rng.integers(len(self.lesion_cases))]
            voxel = case.lesion_voxels[rng.integers(len(case.lesion_voxels))].astype(np.int64)
            tumor_patch = True
        elif tumor_patch := bool(rng.random() < self.patch.tumor_fraction) and bool(self.tumor_cases):
            case = self.tumor_cases[rng.integers(len(self.tumor_cases))]
            if case.lesion_starts is None:
                index = rng.integers(len(case.tumor_voxels))
            else:
                lesion = rng.integers(len(case.lesion_starts) - 1)
                index = rng.integers(case.lesion_starts[lesion], case.lesion_starts[lesion + 1])
            voxel = case.tumor_voxels[index].astype(np.int64)
        else:
            case = self.cases[rng.integers(len(self.cases))]
            voxel = self._liver_voxel(case, rng)
        offset = rng.integers(0, self.output_size)  # where the voxel lies in the output region
        return PatchPosition(case, voxel - offset, tumor_patch)

    def _liver_voxel(self, case: CaseArrays, rng: np.random.Generator) -> NDArray[np.int64]:
        """A uniformly random liver voxel (rejection sampling inside the liver's bounding box)."""
        while True:
            candidates = rng.integers(case.liver_lo, case.liver_hi, size=(64, 3))
            hits = case.liver[candidates[:, 0], candidates[:, 1], candidates[:, 2]] > 0
            if hits.any():
                return candidates[int(np.argmax(hits))]

    def extract(self, position: PatchPosition) -> tuple[NDArray, NDArray, NDArray]:
        """Input image crop (X, Y, Z) float32, output-region target and weight mask (x, y, z) uint8."""
        case, out_start = position.case, position.out_start
        out_size = np.array(self.output_size)
        margin = np.array(self.margins)
        image = crop(case.image, out_start - margin, out_size + 2 * margin, IMAGE_PAD_MODE)
        target = crop(case.tumor, out_start, out_size)
        weight = self._weight(case, out_start)
        return image.astype(np.float32, copy=False), (target > 0).astype(np.uint8), weight

    def _weight(self, case: CaseArrays, out_start: NDArray[np.int64]) -> NDArray[np.uint8]:
        """The dilated liver on the output region, zero past the volume border."""
        out_size = np.array(self.output_size)
        reach = np.array(dilation_reach(case.spacing, self.patch.loss_dilation_mm, self.patch.loss_dilation_slices))
        liver = crop(case.liver, out_start - reach, out_size + 2 * reach)
        dilated = dilate_liver(liver, case.spacing, self.patch.loss_dilation_mm, self.patch.loss_dilation_slices)
        dilated = dilated[reach[0]:reach[0] + out_size[0], reach[1]:reach[1] + out_size[1],
                          reach[2]:reach[2] + out_size[2]]
        return (dilated & _inside_volume(out_start, out_size, case.liver.shape)).astype(np.uint8)


def _lesion_starts(tumor: NDArray, voxels: NDArray[np.int32]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(starts, order): ``voxels[order]`` grouped by 26-connected lesion of ``tumor``, lesion ``l``
    in rows ``starts[l]:starts[l + 1]`` (``len(starts)`` = lesions + 1)."""
    import cc3d

    labels = cc3d.connected_components(np.ascontiguousarray(np.asarray(tumor) > 0), connectivity=26)
    per_voxel = labels[voxels[:, 0], voxels[:, 1], voxels[:, 2]]
    order = np.argsort(per_voxel, kind="stable")
    starts = np.searchsorted(per_voxel[order], np.arange(1, int(per_voxel.max(initial=0)) + 2))
    return starts.astype(np.int64), order


def _inside_volume(start: NDArray[np.int64], size: NDArray[np.int64], shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """(x, y, z) mask of the box ``[start, start + size)`` that is True inside the volume."""
    axes = [(np.arange(s, s + n) >= 0) & (np.arange(s, s + n) < d) for s, n, d in zip(start, size, shape)]
    return axes[0][:, None, None] & axes[1][None, :, None] & axes[2][None, None, :]
