"""Predict one case: read, pre-process as in training, tiled network (+ mirror TTA), post-process,
map back to the original grid, write (METHOD.md section 7).

The chain for one case (``Predictor.predict``):

1. ``load_case``: read the image and liver mask (any format ``io.volumes.read_volume`` reads), check that
   they share one grid, pre-process exactly as training did (``data.preprocess.prepare_volume`` with
   the model's ``PreprocessConfig``).
2. ``Predictor.probability``: sigmoid probabilities on the prepared grid, tile by tile over the
   bounding box of ``Predictor.region`` (the liver; a predicted liver dilated by
   ``infer.auto_liver_margin_mm``, where ``Predictor.finish`` first adds the tumours at its edge:
   ``liver.extend_liver_by_tumours``) (``tiling.predict_tiled``), tiles fitted to the box and to the memory at
   hand; in the arithmetic and layout the model trained in (``Predictor``: the model folder decides, so
   ``hepaseg predict`` on a study's model folder gives the study's own masks); optional mirror TTA
   (``with_mirror_tta``). ``Predictor.run_network`` returns the probability with its region.
3. ``postprocess.postprocess`` on the prepared (1 mm) grid: liver restriction, threshold, border
   opening. Its result is a *mask*, and the mask is what goes back to the original grid
   (as ``io.geometry.to_original(mask=True)``: linear interpolation of 0/1, then >= 0.5; computed
   only near the liver's box by ``to_original_in_box``), then it is intersected with the original
   liver mask (when ``restrict_to_liver``). The probability is mapped back separately (linear)
   for ``--save-probabilities`` and the lesions' mean probability; a threshold of the mapped-back
   probability would ignore the border opening, so it is not used.
4. ``lesion_table.lesions`` on the original grid.

Steps 3-4 are ``Predictor.finish``, so a batch driver can run them beside the next network pass.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..config import Config, InferConfig, PreprocessConfig
from ..data.morphology import dilate_liver
from ..data.preprocess import prepare_volume
from ..errors import InputError
from ..io.geometry import GridMap, on_grid, to_original_in_box
from ..io.volumes import Volume, read_volume
from ..model.device import memory_format
from .lesion_table import Lesion, lesions
from .liver import extend_liver_by_tumours, liver_problem, predict_liver
from .postprocess import postprocess
from .tiling import fit_tile, lattice_extent, liver_box, memory_budget_voxels, predict_tiled

ProbabilityFn = Callable[[NDArray, NDArray], NDArray]  # (image, region) (x, y, z) -> probability (x, y, z)


# --- test-time augmentation ---------------------------------------------------------------------


def with_mirror_tta(predict: ProbabilityFn, axes: tuple[int, ...] = (0, 1)) -> ProbabilityFn:
    """Wrap a volume predictor: mean probability over all 2^len(axes) mirrorings, each flipped back.

    By default the 4 in-plane mirrorings (x, y; the identity included), flips the training
    augmentation also makes. Adding z (8 mirrorings) doubled the time for at most 0.005 more mean
    Dice on the demo's models (docs/benchmarks.md, "Liver model", third round).
    """
    flips = [c for r in range(len(axes) + 1) for c in itertools.combinations(axes, r)]

    def predict_tta(image: NDArray, liver: NDArray) -> NDArray[np.float32]:
        total = np.zeros(np.shape(image), dtype=np.float32)
        for flip in flips:
            total += np.flip(predict(np.flip(image, flip), np.flip(liver, flip)), flip)
        return total / np.float32(len(flips))

    return predict_tta


# --- one case ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LoadedCase:
    """A case read and pre-processed, ready for the network.

    Attributes:
        image: the original image (its ``affine`` and ``source`` decide the outputs' geometry).
        liver: (i, j, k) bool liver mask on the original grid, given or predicted.
        prepared: (x, y, z) float32 normalised image on the prepared grid.
        prepared_liver: (x, y, z) uint8 liver mask on the prepared grid.
        grid: the map between the two grids.
        timings: seconds for ``read``, ``liver`` (the liver model, when it ran) and ``preprocess``.
        liver_origin: ``given`` (a mask file) or ``predicted`` (the liver model).
    """

    image: Volume
    liver: NDArray[np.bool_]
    prepared: NDArray[np.float32]
    prepared_liver: NDArray[np.uint8]
    grid: GridMap
    timings: dict[str, float] = field(default_factory=dict)
    liver_origin: str = "given"


def load_case(image_path: str | Path, liver_path: str | Path | None, config: PreprocessConfig,
              series: str | None = None, liver_model: Predictor | None = None) -> LoadedCase:
    """Read and pre-process one case; a liver mask in another axis order of the image's grid is
    reordered onto the image's voxels (``io.geometry.on_grid``). Without a liver mask the liver
    model makes one (``inference.liver``); a given mask always wins.

    Args:
        series: the Series Instance UID to read when ``image_path`` is a DICOM folder holding several.
        liver_model: the liver model's predictor, used when ``liver_path`` is None.

    Raises:
        InputError: missing / unreadable files, grids that differ, an empty liver mask; no liver
            mask and no liver model; a predicted liver that is missing or implausible
            (``inference.liver.liver_problem``): the case then gets no tumour mask.
    """
    if liver_path is None and liver_model is None:
        raise InputError(image_path, "no liver mask given (-l) and the model has no liver model "
                                     "(train one with 'hepaseg train-liver', embed it with --liver-model)")
    t0 = time.perf_counter()
    image = read_volume(image_path, series)
    if liver_path is not None:
        liver = on_grid(image, read_volume(liver_path))
    timings = {"read": time.perf_counter() - t0}
    if liver_path is None:
        mask = predict_liver(liver_model, image)
        timings["liver"] = time.perf_counter() - t0 - timings["read"]
        problem = liver_problem(mask, image.affine)
        if problem is not None:
            raise InputError(image_path, f"liver model: {problem}; no tumour mask written "
                                         "(give a corrected liver mask with -l)")
        liver = Volume(mask.astype(np.uint8), image.affine, image.source)
    t1 = time.perf_counter()
    prepared, prepared_liver, grid, _ = prepare_volume(image, liver, config)
    timings["preprocess"] = time.perf_counter() - t1
    return LoadedCase(image, np.asarray(liver.array) > 0, prepared, prepared_liver, grid, timings,
                      "given" if liver_path is not None else "predicted")


@dataclass(frozen=True, eq=False)
class CaseResult:
    """A prediction on the case's original grid.

    Attributes:
        mask: (i, j, k) uint8 tumour mask.
        probability: (i, j, k) float32 probability (before post-processing).
        lesions: the rows of ``lesions.csv``.
        timings: seconds for ``network`` and ``postprocess`` (including the way back and lesions).
        liver: (i, j, k) bool liver mask the prediction used: the given one, or the predicted one with
            the tumours at its edge added (``Predictor.finish``).
    """

    mask: NDArray[np.uint8]
    probability: NDArray[np.float32]
    lesions: list[Lesion]
    timings: dict[str, float]
    liver: NDArray[np.bool_]


PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True, eq=False)
class NetworkPass:
    """What the network made of one case (``Predictor.run_network``), before ``Predictor.finish``.

    Attributes:
        probability: (x, y, z) float32 probabilities on the prepared grid (0 outside the region's box).
        region: (x, y, z) uint8 mask of where the network predicted (``Predictor.region``).
        seconds: wall seconds of the pass.
    """

    probability: NDArray[np.float32]
    region: NDArray[np.uint8]
    seconds: float


class Predictor:
    """A trained model ready to predict cases: network, configuration, device and precision.

    The model's configuration decides how it predicts, as training used it: ``config.infer`` (tiles,
    TTA, post-processing), the arithmetic (``precision="auto"``: ``model.device.trained_precision``
    of ``config.train.mixed_precision`` on this device) and, for a torch module, the channels-last 3D
    layout (``config.train.channels_last``). A module is put in eval mode.

    Args:
        net: a module, or any callable (1, 1, X, Y, Z) -> logits (1, 1, x, y, z) with the
            valid-convolution margins of ``config.model``.
        config: the model's configuration.
        device: a ``torch.device`` (or its name).
        precision: ``auto`` (as trained: bf16 where ``train.mixed_precision`` is on and the device has
            native bf16, i.e. CUDA or a CPU with AVX512-BF16 / AMX; else float32), ``fp32``, or ``bf16``
            (probabilities within about 0.02 of float32).
    """

    def __init__(self, net, config: Config, device="cpu", precision: str = "auto") -> None:
        import torch

        from ..model.device import trained_precision

        if precision not in PRECISIONS:
            raise InputError(None, f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
        self.device = torch.device(device)
        self.config = config
        if precision == "auto":
            precision = trained_precision(config.train.mixed_precision, self.device)
        self.bf16 = precision == "bf16"
        self.channels_last = isinstance(net, torch.nn.Module) and config.train.channels_last
        if isinstance(net, torch.nn.Module):
            net = net.eval().to(memory_format=memory_format(self.channels_last))
        self.net = net
        self.liver_model: Predictor | None = None  # the model folder's liver model (``Predictor.load``)

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "auto", infer: dict[str, object] | None = None,
             precision: str = "auto") -> Predictor:
        """Load a model folder, and its liver model where it holds one, to predict as the folder says.

        Args:
            infer: overrides of fields of the tumour model's ``InferConfig`` (e.g. ``{"tta": True}``);
                None: the folder's own.
            precision: ``auto`` (each network as it trained, see the class), or ``fp32`` / ``bf16`` for both.

        Raises:
            InputError: missing or incompatible model folder, unavailable device, unknown precision or
                ``InferConfig`` field.
        """
        from ..model.device import resolve_device
        from ..model.folder import liver_model_dir, load_model, shipped_liver_dir

        dev = resolve_device(device)
        net, config = load_model(model_dir, dev)
        if infer:
            config = config.replace(infer=_with_infer(config.infer, infer))
        predictor = cls(net, config, dev, precision)
        own = liver_model_dir(model_dir)
        liver = own if own.is_dir() else shipped_liver_dir()
        if liver is not None:
            predictor.liver_model = cls.load_liver(liver, dev, precision)
        return predictor

    @classmethod
    def load_liver(cls, folder: str | Path | None = None, device: str | torch.device = "auto",
                   precision: str = "auto") -> Predictor:
        """A liver model's predictor: the model folder ``folder``, or (None) the one shipped in the package.

        Raises:
            InputError: ``folder`` is not a liver model (``model.folder.check_liver_model``); None and this
                installation ships no liver model; an unavailable device.
        """
        from ..model.device import resolve_device
        from ..model.folder import check_liver_model, load_model, shipped_liver_dir

        if folder is None:
            folder = shipped_liver_dir()
            if folder is None:
                raise InputError(None, "this installation has no shipped liver model; give one with --model")
        check_liver_model(folder)
        dev = resolve_device(device)
        net, config = load_model(folder, dev)
        return cls(net, config, dev, precision)

    @property
    def infer(self) -> InferConfig:
        return self.config.infer

    def probability(self, image: NDArray, liver: NDArray) -> NDArray[np.float32]:
        """(x, y, z) probabilities on the prepared grid (0 outside the liver's bounding box)."""
        predict = with_mirror_tta(self._predict_plain) if self.infer.tta else self._predict_plain
        return predict(image, liver)

    def region(self, case: LoadedCase) -> NDArray[np.uint8]:
        """(x, y, z) mask of where the network predicts: the prepared liver, or a predicted liver
        dilated in-plane by ``infer.auto_liver_margin_mm`` (when that is > 0)."""
        if not self._searches_beyond_liver(case):
            return case.prepared_liver
        return dilate_liver(case.prepared_liver, case.grid.prepared_spacing, self.infer.auto_liver_margin_mm,
                            0).astype(np.uint8)

    def _searches_beyond_liver(self, case: LoadedCase) -> bool:
        """A predicted liver with ``infer.auto_liver_margin_mm`` > 0 (``region``, ``finish``)."""
        return case.liver_origin == "predicted" and self.infer.auto_liver_margin_mm > 0

    def _predict_plain(self, image: NDArray, liver: NDArray) -> NDArray[np.float32]:
        box = liver_box(liver)
        if box is None:
            return np.zeros(np.shape(image), dtype=np.float32)
        model = self.config.model
        extent = lattice_extent(model, box)
        budget = memory_budget_voxels(model, self.device, self.bf16)
        tile = fit_tile(model, extent, self.infer.tile_output_size, budget)
        return predict_tiled(self.net, model, image, liver, tile, self.device, self.bf16, self.channels_last)

    def run_network(self, case: LoadedCase) -> NetworkPass:
        """The network over ``region(case)``: the probabilities ``finish`` turns into masks."""
        t0 = time.perf_counter()
        region = self.region(case)
        prob = self.probability(case.prepared, region)
        return NetworkPass(prob, region, time.perf_counter() - t0)

    def predict(self, case: LoadedCase, case_id: str) -> CaseResult:
        """``run_network``, then ``finish``; ``timings`` gets ``network`` and ``postprocess``."""
        return self.finish(case, self.run_network(case), case_id)

    def finish(self, case: LoadedCase, network: NetworkPass, case_id: str) -> CaseResult:
        """Post-processing, the way back to the original grid and the lesion table (no network);
        ``timings`` gets ``network`` (the pass's) and ``postprocess``."""
        t0 = time.perf_counter()
        prob = network.probability
        case = self._with_edge_tumours(case, prob, network.region)
        box = liver_box(case.prepared_liver)
        if box is None:  # prepare_volume rejects empty livers; a liver lost in resampling gives nothing
            original = np.zeros(case.image.shape, np.uint8)
            prob_original = np.zeros(case.image.shape, np.float32)
        else:
            mask = _postprocess_in_box(prob, case.prepared_liver, box, self.infer, self.config.preprocess.inplane_spacing_mm)
            original = (to_original_in_box(mask, case.grid, box) >= 0.5).astype(np.uint8)
            if self.infer.restrict_to_liver:
                original &= case.liver
            prob_original = to_original_in_box(prob, case.grid, box)
        table = lesions(case_id, original, prob_original, case.image.affine, self.infer.lesion_connectivity)
        timings = {"network": network.seconds, "postprocess": time.perf_counter() - t0}
        return CaseResult(original, prob_original, table, timings, case.liver)

    def _with_edge_tumours(self, case: LoadedCase, prob: NDArray, region: NDArray) -> LoadedCase:
        """``case`` with the tumour components that touch its predicted liver added to that liver, on
        both grids (``liver.extend_liver_by_tumours``); a given liver, or margin 0: ``case`` itself."""
        if not self._searches_beyond_liver(case):
            return case
        liver = extend_liver_by_tumours(prob, case.prepared_liver, region, self.infer.threshold,
                                        self.infer.lesion_connectivity)
        added = liver & (case.prepared_liver == 0)
        box = liver_box(added)
        if box is None:
            return case
        back = to_original_in_box(added, case.grid, box) >= 0.5
        return dataclasses.replace(case, liver=case.liver | back, prepared_liver=liver)


def _with_infer(infer: InferConfig, overrides: dict[str, object]) -> InferConfig:
    """``infer`` with ``overrides`` of its fields; InputError naming an unknown field."""
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(InferConfig)})
    if unknown:
        raise InputError(None, f"unknown inference setting(s) {', '.join(unknown)}")
    return dataclasses.replace(infer, **overrides)


def _postprocess_in_box(prob: NDArray, liver: NDArray, box: tuple[NDArray, NDArray],
                        infer: InferConfig, inplane_spacing_mm: float) -> NDArray[np.uint8]:
    """``postprocess`` on the liver's bounding box ``box`` plus one voxel; identical to the whole volume.

    Outside the box the probability is 0 (``predict_volume``) and there is no liver, so nothing
    there can become tumour; the one-voxel rim keeps the erosions' edge behaviour unchanged.
    """
    out = np.zeros(np.shape(prob), dtype=np.uint8)
    region = tuple(slice(max(0, int(lo) - 1), int(hi) + 1) for lo, hi in zip(*box))
    out[region] = postprocess(prob[region], np.asarray(liver)[region], infer, inplane_spacing_mm)
    return out
