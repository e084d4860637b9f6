"""Tissue signals from MR physics: draw a sequence, evaluate its signal equation per tissue (issue 28).

The second way ``synth.appearance`` draws a case's contrast (next to uniform random signals): every
tissue has a longitudinal and transverse relaxation time and a proton density (``RELAXATION``, 1.5 T,
the order of magnitude of published values), jittered per case; a sequence is drawn from four
families and its steady-state signal equation gives each tissue's signal:

- ``spin_echo`` (T1-, PD- or T2-weighted TSE): ``PD (1 - exp(-TR/T1)) exp(-TE/T2)``;
- ``gradient_echo`` (spoiled, T1-weighted, e.g. VIBE / in-phase):
  ``PD sin a (1 - E1) / (1 - cos a E1) exp(-TE/T2*)`` with ``E1 = exp(-TR/T1)``, ``T2* = T2 / 2``;
- ``ssfp`` (balanced steady state, T2/T1-weighted): ``PD sin a / (1 + cos a + (1 - cos a) T1/T2)``;
- ``inversion_recovery`` (STIR-like magnitude): ``PD |1 - 2 exp(-TI/T1) + exp(-TR/T1)| exp(-TE/T2)``.

Fat suppression, flowing blood (dark in spin echoes, bright by inflow in gradient echoes) and a
contrast agent shortening T1 (gradient echoes only: extracellular or hepatocyte-specific) are drawn
as well. Signals are scaled so that the brightest solid organ is 0.8-1.4 and capped at
``appearance.SIGNAL_RANGE``'s top, the envelope of the uniform draws. Units: ms, degrees.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

# T1 (ms), T2 (ms), proton density (relative) at 1.5 T
RELAXATION: dict[str, tuple[float, float, float]] = {
    "liver": (576, 46, 0.75), "spleen": (1057, 79, 0.85), "kidney_cortex": (966, 87, 0.85),
    "kidney_medulla": (1412, 85, 0.9), "muscle": (856, 27, 0.75), "fat": (290, 58, 0.95),
    "blood": (1441, 290, 0.9), "fluid": (3000, 700, 1.0), "bile": (2500, 500, 1.0),
    "marrow": (550, 50, 0.8), "disc": (1000, 100, 0.85), "myocardium": (1030, 40, 0.75),
    "chyme": (1100, 120, 0.85),
}
SOLID = ("liver", "spleen", "kidney_cortex", "muscle", "fat")
FAMILIES = ("spin_echo", "gradient_echo", "ssfp", "inversion_recovery")
JITTER_SD = 0.15  # per-case log-normal jitter of T1, T2 and PD
CAP = 1.4


@dataclasses.dataclass(frozen=True)
class Sequence:
    """One drawn sequence: family, timing (ms), flip angle (degrees) and modifiers.

    Attributes:
        flow: factor on the blood's signal (flow voids < 1, inflow > 1).
        fat_factor: factor on fat's signal (fat suppression < 1).
        agent_t1: factor on T1 per tissue name for a contrast agent (empty: none).
    """

    family: str
    tr: float
    te: float
    flip: float
    ti: float
    flow: float
    fat_factor: float
    agent_t1: dict[str, float]

    def to_dict(self) -> dict:
        return {"family": self.family, "tr": round(self.tr, 1), "te": round(self.te, 1), "flip": round(self.flip, 1),
                "ti": round(self.ti, 1), "flow": round(self.flow, 3), "fat_factor": round(self.fat_factor, 3),
                "agent": sorted(self.agent_t1)}


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def draw_sequence(rng: np.random.Generator) -> Sequence:
    """A sequence family and its parameters, uniformly over clinically used ranges."""
    family = FAMILIES[int(rng.integers(len(FAMILIES)))]
    fat = _u(rng, 0.03, 0.3) if rng.random() < 0.5 else 1.0
    agent: dict[str, float] = {}
    if family == "spin_echo":
        tr, te, flip, ti, flow = _u(rng, 400, 6000), _u(rng, 8, 120), 90.0, 0.0, _u(rng, 0.02, 0.6)
    elif family == "gradient_echo":
        tr, te, flip, ti, flow = _u(rng, 3, 200), _u(rng, 1.2, 6), _u(rng, 5, 80), 0.0, _u(rng, 0.5, 2.5)
        if rng.random() < 0.5:
            hepatocyte = rng.random() < 0.5
            agent = {"liver": _u(rng, 0.3, 0.6) if hepatocyte else _u(rng, 0.5, 0.8),
                     "blood": _u(rng, 0.4, 0.9) if hepatocyte else _u(rng, 0.15, 0.5),
                     "spleen": _u(rng, 0.5, 0.9), "kidney_cortex": _u(rng, 0.3, 0.8),
                     "kidney_medulla": _u(rng, 0.3, 0.9), "myocardium": _u(rng, 0.5, 0.9)}
            if hepatocyte and rng.random() < 0.5:
                agent["bile"] = _u(rng, 0.05, 0.3)  # excreted into the bile
    elif family == "ssfp":
        tr, te, flip, ti, flow = _u(rng, 3, 6), 0.0, _u(rng, 30, 80), 0.0, _u(rng, 0.8, 1.5)
    else:
        tr, te, flip, flow = _u(rng, 3000, 8000), _u(rng, 20, 90), 90.0, _u(rng, 0.05, 0.8)
        ti = _u(rng, 160, 220) if rng.random() < 0.7 else _u(rng, 300, 1500)
        fat = 1.0  # an inversion near fat's null point suppresses it by itself
    return Sequence(family, tr, te, flip, ti, flow, fat, agent)


def signal(seq: Sequence, t1: float, t2: float, pd: float) -> float:
    """The sequence's signal of a tissue (same units as ``pd``)."""
    e1 = math.exp(-seq.tr / t1)
    a = math.radians(seq.flip)
    if seq.family == "spin_echo":
        return pd * (1 - e1) * math.exp(-seq.te / t2)
    if seq.family == "gradient_echo":
        return pd * math.sin(a) * (1 - e1) / (1 - math.cos(a) * e1) * math.exp(-seq.te / (t2 / 2))
    if seq.family == "ssfp":
        return pd * math.sin(a) / (1 + math.cos(a) + (1 - math.cos(a)) * t1 / t2)
    return pd * abs(1 - 2 * math.exp(-seq.ti / t1) + e1) * math.exp(-seq.te / t2)


def tissue_signals(seq: Sequence, rng: np.random.Generator) -> dict[str, float]:
    """Signal per ``RELAXATION`` name, relaxation times jittered per case, scaled (see the module)."""
    raw = {}
    for name, (t1, t2, pd) in RELAXATION.items():
        j1, j2, jp = np.exp(rng.normal(0.0, JITTER_SD, 3))
        raw[name] = signal(seq, t1 * j1 * seq.agent_t1.get(name, 1.0), t2 * j2, pd * jp)
    raw["fat"] *= seq.fat_factor
    raw["marrow"] *= 0.5 + 0.5 * seq.fat_factor  # red marrow: part fat
    raw["blood"] *= seq.flow
    scale = _u(rng, 0.8, CAP) / max(max(raw[n] for n in SOLID), 1e-9)
    return {name: min(value * scale, CAP) for name, value in raw.items()}
