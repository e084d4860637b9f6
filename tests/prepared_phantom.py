"""Tiny synthetic prepared-case caches for the training tests (not a test module).

A case is a bright ellipsoid "liver" (1.0) in a darker body (0.2) with a few dark spheres
"tumours" (0.3) inside it, plus Gaussian noise; arrays are (x, y, z) on a 2 x 2 x 3 mm grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hepaseg.data.preprocess import save_prepared_case

SPACING = (2.0, 2.0, 3.0)


def phantom(rng: np.random.Generator, shape: tuple[int, int, int] = (48, 44, 14), tumours: int = 3,
            noise: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image float32, liver uint8, tumour uint8), each (x, y, z)."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).astype(float)
    centre = np.array(shape) / 2 + rng.uniform(-2, 2, 3)
    radii = np.array(shape) * rng.uniform(0.3, 0.38, 3)
    liver = (((grid - centre) / radii) ** 2).sum(-1) <= 1
    tumour = np.zeros(shape, bool)
    inside = np.argwhere(liver)
    for _ in range(tumours):
        c = inside[rng.integers(len(inside))]
        r = rng.uniform(2.0, 4.0)
        scale = np.array([1.0, 1.0, SPACING[0] / SPACING[2]])
        tumour |= ((((grid - c) * scale) ** 2).sum(-1) <= r * r) & liver
    image = np.where(liver, 1.0, 0.2)
    image = np.where(tumour, 0.3, image) + rng.normal(0, noise, shape)
    return image.astype(np.float32), liver.astype(np.uint8), tumour.astype(np.uint8)


def make_cache(root: Path, seed: int = 0, n_train: int = 2, n_val: int = 1,
               shape: tuple[int, int, int] = (48, 44, 14)) -> Path:
    """Write ``n_train`` + ``n_val`` phantom cases (rater R1) into ``root``; return it."""
    rng = np.random.default_rng(seed)
    for i in range(n_train + n_val):
        image, liver, tumour = phantom(rng, shape)
        split = "train" if i < n_train else "val"
        save_prepared_case(root, f"case{i:02d}", split, image, liver, {"R1": tumour}, SPACING)
    return root


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tests run torch on one thread: on a shared 2-core machine, two OpenMP threads wait for each
    other far longer than they compute on these tiny tensors."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
