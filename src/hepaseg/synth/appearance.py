"""Randomised appearance for the liver model's training cohort (SynthSeg-style, issue 28).

The phantom's anatomy stays as drawn; what a scanner and a sequence decide is drawn at random per
case, so that a network trained on these cases learns the liver's shape and place, not its contrast:

- every tissue's relative signal either uniform in ``SIGNAL_RANGE`` (liver included: the liver may be
  darker or brighter than the spleen, fat, muscle or blood), or, with probability
  ``PHYSICS_PROBABILITY``, from a drawn MR sequence's signal equation (``synth.contrast``: the
  contrasts real scanners make, T1-, T2-, PD-weighted, SSFP, STIR, contrast-enhanced); air and lung
  kept dark (``DARK_RANGE``);
  parenchymal texture up to ``TEXTURE_SD_MAX``; lesions get a random signal too;
- with probability ``HBP_PROBABILITY`` the anatomy's own hepatobiliary-phase signals
  (``anatomy.draw_signals``) and the HBP signal chain are kept instead (today's cohort stays one of the drawn appearances);
- the signal chain (``acquisition.Acquisition``) with SNR 6-40, bias fields up to +-45 %, ghosting,
  and a stored scale over five decades.

Every draw comes from the generator it is given (``case.case_rng``'s ``appearance`` stream).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from .acquisition import Acquisition, draw_acquisition
from .anatomy import Anatomy, Signals
from .contrast import Sequence, draw_sequence, tissue_signals
from .lesions import Lesion
from .render import TISSUES

SIGNAL_RANGE = (0.05, 1.4)  # relative signal of a tissue (the phantom's liver is 1.0)
DARK_RANGE = (0.0, 0.12)  # air, lung and gas: dark in every MR sequence
DARK = ("air",)
TEXTURE_SD_MAX = 0.08
HBP_PROBABILITY = 0.2
PHYSICS_PROBABILITY = 0.5  # of the cases that do not keep the HBP appearance
TISSUE_SD_MAX = 0.2
TEXTURE_MM_RANGE = (1.5, 6.0)
SNR_RANGE = (6.0, 40.0)
BIAS_RANGE = (0.0, 0.45)
SCALE_LOG10_RANGE = (1.5, 4.3)  # stored units per unit of signal: 30 to 20 000 (int16 holds 1.4 x 20 000)


@dataclasses.dataclass(frozen=True)
class Appearance:
    """One case's drawn appearance.

    Attributes:
        hbp: the anatomy's own hepatobiliary-phase signals are kept (then ``signals`` is None and the
            liver's signal, texture and the lesions are left as drawn).
        signals: every tissue's relative signal (``anatomy.Signals``).
        liver_signal: the parenchyma's base signal.
        texture_sd: the parenchyma's fine texture, relative.
        lesion_signal: every lesion's signal relative to the liver's (None: the lesions' own).
        acquisition: the signal chain.
        tissue_sd: per tissue code (``render.TISSUES``), the SD of a smooth multiplicative texture
            (every tissue textured, as in real scans; all 0 for an ``hbp`` appearance).
        texture_mm: the texture's correlation length.
        sequence: the MR sequence whose signal equation gave ``signals`` (None: uniform draws).
    """

    hbp: bool
    signals: Signals | None
    liver_signal: float
    texture_sd: float
    lesion_signal: float | None
    acquisition: Acquisition
    tissue_sd: tuple[float, ...] = ()
    texture_mm: float = 3.0
    sequence: Sequence | None = None

    def to_dict(self) -> dict:
        return {"hbp": self.hbp, "sequence": None if self.sequence is None else self.sequence.to_dict(), "liver_signal": round(self.liver_signal, 3), "texture_sd": round(self.texture_sd, 3),
                "lesion_signal": None if self.lesion_signal is None else round(self.lesion_signal, 3),
                "signals": None if self.signals is None else
                {k: round(v, 3) for k, v in dataclasses.asdict(self.signals).items()},
                "acquisition": self.acquisition.to_dict()}


def draw_appearance(rng: np.random.Generator) -> Appearance:
    """Draw one case's appearance: HBP coin, tissue signals, texture, lesion signal, signal chain."""
    hbp = bool(rng.random() < HBP_PROBABILITY)
    names = [f.name for f in dataclasses.fields(Signals)]
    drawn = {name: float(rng.uniform(*(DARK_RANGE if name in DARK else SIGNAL_RANGE))) for name in names}
    liver = float(rng.uniform(*SIGNAL_RANGE))
    sequence = draw_sequence(rng) if rng.random() < PHYSICS_PROBABILITY else None
    if sequence is not None:
        drawn, liver = _physics_signals(sequence, rng, drawn["air"])
    texture = float(rng.uniform(0.0, TEXTURE_SD_MAX))
    lesion = float(rng.uniform(0.1, 1.6))
    tissue_sd = tuple(float(v) for v in rng.uniform(0.0, TISSUE_SD_MAX, len(TISSUES)))
    texture_mm = float(rng.uniform(*TEXTURE_MM_RANGE))
    base = draw_acquisition(rng)
    acquisition = dataclasses.replace(
        base, snr=float(rng.uniform(*SNR_RANGE)), bias_amplitude=float(rng.uniform(*BIAS_RANGE)),
        scale=float(10 ** rng.uniform(*SCALE_LOG10_RANGE)), offset=0)
    if hbp:
        return Appearance(True, None, 1.0, 0.0, None, base)
    return Appearance(False, Signals(**drawn), liver, texture, lesion, acquisition, tissue_sd, texture_mm, sequence)


def _physics_signals(sequence: Sequence, rng: np.random.Generator, air: float) -> tuple[dict[str, float], float]:
    """``Signals``' fields and the liver's signal from ``sequence``'s signal equation."""
    t = tissue_signals(sequence, rng)
    stomach, bowel = (t["fluid"] if rng.random() < 0.5 else t["chyme"] for _ in range(2))
    fat_edge = float(rng.uniform(0.0, 0.15)) if sequence.fat_factor < 1 else 0.0  # failed suppression at the skin
    fields = {"fat": t["fat"], "fat_edge": fat_edge, "muscle": t["muscle"], "visceral": t["fat"],
              "blood": t["blood"], "bile": t["bile"], "gallbladder": t["bile"], "spleen": t["spleen"],
              "kidney_cortex": t["kidney_cortex"], "kidney_medulla": t["kidney_medulla"], "bone": t["marrow"],
              "disc": t["disc"], "csf": t["fluid"], "heart": t["myocardium"],
              "stomach": stomach, "bowel": bowel, "air": air}
    return fields, t["liver"]


def apply_appearance(anatomy: Anatomy, lesions: tuple[Lesion, ...], appearance: Appearance
                     ) -> tuple[Anatomy, tuple[Lesion, ...]]:
    """``anatomy`` and ``lesions`` with ``appearance``'s signals (their shapes unchanged; as they are
    for an ``hbp`` appearance). A lesion keeps its core-to-rim contrast."""
    if appearance.signals is None:
        return anatomy, lesions
    rim = appearance.lesion_signal * appearance.liver_signal
    lesions = tuple(dataclasses.replace(les, signal=rim, core_signal=rim * les.core_signal / max(les.signal, 1e-6))
                    for les in lesions)
    liver = dataclasses.replace(anatomy.liver, base_signal=appearance.liver_signal, texture_sd=appearance.texture_sd)
    return dataclasses.replace(anatomy, signals=appearance.signals, liver=liver), lesions


def texture(signal: NDArray[np.float32], labels: NDArray[np.uint8], appearance: Appearance, spacing,
            seed: int) -> NDArray[np.float32]:
    """``signal`` (canonical (i, j, k), relative) times ``1 + sd[label] * noise``: one smooth unit-SD
    Gaussian field (correlation length ``appearance.texture_mm``) from ``seed``, scaled per tissue."""
    from scipy import ndimage

    if not appearance.tissue_sd:
        return signal
    noise = np.random.default_rng(seed).standard_normal(signal.shape, dtype=np.float32)
    noise = ndimage.gaussian_filter(noise, [appearance.texture_mm / s for s in spacing], mode="reflect")
    noise /= max(float(noise.std()), 1e-6)
    noise *= np.asarray(appearance.tissue_sd, np.float32)[labels]
    noise += np.float32(1.0)
    signal *= noise
    return signal
