"""From noiseless relative signal to stored integers: bias field, ghosting, Rician noise, scaling.

``draw_acquisition`` draws the parameters; ``acquire`` applies them to a canonical signal array
(liver parenchyma = 1.0). The stored value is ``round(scale * magnitude + offset)`` as int16, so
``(stored - offset) / scale`` recovers the noisy relative signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .raster import Array, Grid


@dataclass(frozen=True)
class Acquisition:
    """Signal-chain parameters of one scan.

    Attributes:
        snr: liver signal / noise SD (before the bias field).
        bias_amplitude: largest relative deviation of the multiplicative bias field.
        bias_waves: (terms, 3, 2) wavelength (mm) and phase (rad) of each term's cosine along x, y, z;
            the field is a sum of products of these cosines, scaled to ``bias_amplitude``.
        ghost_amplitude: strength of each respiratory ghost (0: none).
        ghost_axis: canonical in-plane axis of phase encoding (0 = left-right, 1 = anterior-posterior).
        ghost_shift: ghost displacement as a fraction of the matrix along that axis.
        scale: stored units per unit of relative signal.
        offset: stored value of zero signal.
        noise_seed: seed of the noise draw.
    """

    snr: float
    bias_amplitude: float
    bias_waves: NDArray[np.float64]
    ghost_amplitude: float
    ghost_axis: int
    ghost_shift: float
    scale: float
    offset: int
    noise_seed: int

    def to_dict(self) -> dict:
        return {"snr": self.snr, "bias_amplitude": self.bias_amplitude, "ghost_amplitude": self.ghost_amplitude,
                "ghost_axis": self.ghost_axis, "scale": self.scale, "offset": self.offset}


def draw_acquisition(rng: np.random.Generator) -> Acquisition:
    """SNR 15-40, bias +-10-30 %, mild ghosting in a third of the scans, random scale and offset."""
    ghost = rng.random() < 0.35
    return Acquisition(
        snr=float(rng.uniform(15, 40)),
        bias_amplitude=float(rng.uniform(0.1, 0.3)),
        bias_waves=np.stack([rng.uniform(500, 1500, (4, 3)), rng.uniform(0, 2 * np.pi, (4, 3))], axis=-1),
        ghost_amplitude=float(rng.uniform(0.02, 0.06)) if ghost else 0.0,
        ghost_axis=1 if rng.random() < 0.7 else 0,
        ghost_shift=float(rng.uniform(0.15, 0.4)),
        scale=float(np.exp(rng.uniform(np.log(150), np.log(2500)))),
        offset=0 if rng.random() < 0.5 else int(rng.integers(-300, 1000)),
        noise_seed=int(rng.integers(2**31)),
    )


def bias_field(acq: Acquisition, grid: Grid) -> Array:
    """Multiplicative field on the grid, 1 +- ``bias_amplitude`` at its extremes."""
    field = np.zeros(grid.shape, np.float32)
    for term in acq.bias_waves:
        fx, fy, fz = (np.cos(2 * np.pi * grid.axis(a) / term[a, 0] + term[a, 1]).astype(np.float32) for a in range(3))
        field += fx[:, None, None] * fy[None, :, None] * fz[None, None, :]
    field -= np.float32(field.mean())
    field *= np.float32(acq.bias_amplitude / max(float(np.abs(field).max()), 1e-6))
    field += np.float32(1.0)
    return field


def acquire(signal: Array, acq: Acquisition, grid: Grid) -> NDArray[np.int16]:
    """Apply bias, ghosting, Rician noise and integer scaling to ``signal`` (canonical, float32)."""
    m = signal * bias_field(acq, grid)
    if acq.ghost_amplitude > 0:
        shift = int(round(acq.ghost_shift * grid.shape[acq.ghost_axis]))
        ghost = np.roll(m, shift, axis=acq.ghost_axis)
        ghost += np.roll(m, -shift, axis=acq.ghost_axis)
        ghost *= np.float32(acq.ghost_amplitude)
        m += ghost
        del ghost
    rng = np.random.default_rng(acq.noise_seed)
    sigma = np.float32(1.0 / acq.snr)
    real = rng.standard_normal(m.shape, dtype=np.float32)
    real *= sigma
    real += m
    imag = rng.standard_normal(m.shape, dtype=np.float32)
    imag *= sigma
    np.hypot(real, imag, out=m)
    del real, imag
    m *= np.float32(acq.scale)
    m += np.float32(acq.offset)
    np.rint(m, out=m)
    np.clip(m, -32768, 32767, out=m)
    return m.astype(np.int16)
