"""The ablation's architecture variants (``presets.variant_config``): what changes,
what stays, valid sizes, the presets, and the cache fingerprint of the z-resampled grid."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from hepaseg.config import Config

from hepaseg.presets import PRESETS, VARIANTS, liver_preset_for, preset, variant_config
from hepaseg.data.manifest import Case
from hepaseg.data.preprocess import CACHE_FORMAT, case_fingerprint
from hepaseg.errors import InputError
from hepaseg.model.shapes import input_size, valid_output_size

from .tiny_study import tiny_study_config

BASES = {"paper": preset("paper"), "demo": preset("demo"), "tiny": tiny_study_config()}


def test_unknown_variant_and_aunet():
    base = preset("demo")
    assert VARIANTS == ("aunet", "2d", "3d")
    assert variant_config(base, "aunet") is base
    with pytest.raises(InputError, match=r"unknown variant 'x' \(choose from aunet, 2d, 3d\)"):
        variant_config(base, "x")


@pytest.mark.parametrize("name", list(BASES))
@pytest.mark.parametrize("variant", ["2d", "3d"])
def test_only_model_patch_size_z_grid_and_tile_change(name, variant):
    base = BASES[name]
    cfg = variant_config(base, variant)
    assert cfg.preset == f"{base.preset}-{variant}"
    for stage in ("augment", "train", "select", "evaluate"):
        assert getattr(cfg, stage) == getattr(base, stage), stage
    assert dataclasses.replace(cfg.patch, output_size=base.patch.output_size) == base.patch
    assert dataclasses.replace(cfg.infer, tile_output_size=base.infer.tile_output_size) == base.infer
    assert dataclasses.replace(cfg.preprocess, slice_spacing_mm=None) == base.preprocess
    m = cfg.model
    assert (m.dropout, m.bn_momentum, m.bn_eps, m.in_channels) == (base.model.dropout, base.model.bn_momentum,
                                                                   base.model.bn_eps, base.model.in_channels)
    assert len(m.widths) == len(base.model.widths) and cfg.patch.output_size[:2] == base.patch.output_size[:2]
    for size in (cfg.patch.output_size, cfg.infer.tile_output_size):
        assert valid_output_size(m, size) == size
        input_size(m, size)  # raises where not valid
    assert Config.from_json(cfg.to_json()) == cfg
    if variant == "2d":
        assert m.kernel == (3, 3, 1) and set(m.z_convs) == {0} and all(p[2] == 1 for p in m.pools)
        assert m.widths == base.model.widths and cfg.preprocess.slice_spacing_mm is None
        assert cfg.patch.output_size[2] == 1 and input_size(m, cfg.patch.output_size)[2] == 1
        assert cfg.infer.tile_output_size == base.infer.tile_output_size
    else:
        assert m.kernel == (3, 3, 3) and set(m.z_convs) == {0} and set(m.pools) <= {(2, 2, 2)}
        assert m.widths == tuple(w // 2 for w in base.model.widths)
        assert cfg.preprocess.slice_spacing_mm == base.preprocess.inplane_spacing_mm


def test_the_demo_3d_patch_covers_the_demo_patch_extent_on_4mm_slices():
    cfg = preset("demo-3d")
    assert cfg.preprocess.slice_spacing_mm == 2.0
    assert cfg.patch.output_size == (36, 36, 24)  # 12 slices x 4 mm = 24 x 2 mm
    assert input_size(cfg.model, cfg.patch.output_size) == (76, 76, 64)
    assert cfg.infer.tile_output_size == (96, 96, 64)
    assert preset("paper-3d").patch.output_size == (52, 52, 116)  # 32 x 4 mm = 128 x 1 mm, snapped down


def test_presets_of_the_variants():
    for name in ("paper", "demo"):
        for v in ("2d", "3d"):
            assert preset(f"{name}-{v}") == variant_config(preset(name), v)
            assert f"{name}-{v}" in PRESETS
    assert liver_preset_for(preset("demo-3d")).preset == "demo-liver"
    assert liver_preset_for(preset("paper-2d")).preset == "paper-liver"


@pytest.mark.parametrize("levels", [1, 2, 3, 4, 5])
def test_the_3d_variants_sizes_agree_with_a_second_derivation_of_the_uniform_net(levels):
    cfg = variant_config(preset("paper"), "3d").model
    cfg = dataclasses.replace(cfg, widths=(2,) * levels, z_convs=(0,) * levels, pools=((2, 2, 2),) * (levels - 1))
    for wanted in range(1, 90):
        assert uniform_valid_output(levels, 3, wanted) == valid_output_size(cfg, (wanted, 1, 1))[0]


def test_the_fingerprint_changes_with_a_slice_spacing_only(tmp_path: Path):
    image = tmp_path / "image.nii.gz"
    image.write_bytes(b"x")
    case = Case("c", "train", image, image)
    base = preset("demo").preprocess
    # the hash as it was before slice_spacing_mm existed: the other fields only
    old = dataclasses.asdict(base)
    del old["slice_spacing_mm"]
    h = hashlib.sha256(json.dumps(old, sort_keys=True).encode())
    h.update(f"format={CACHE_FORMAT};split=train;series=None".encode())
    for name in ("image", "liver"):
        st = image.stat()
        h.update(f"{name}|{image}|{st.st_size}|{st.st_mtime_ns}".encode())
    assert case_fingerprint(case, base) == h.hexdigest()
    assert case_fingerprint(case, preset("demo-3d").preprocess) != case_fingerprint(case, base)


def test_configurations_without_a_slice_spacing_serialise_as_before():
    """The field is left out of ``to_dict`` while None: stored configurations and the study's and
    selection's fingerprints of them stay as they were; set, it is written, read and compared."""
    from hepaseg.config import differences

    demo, three = preset("demo"), preset("demo-3d")
    assert "slice_spacing_mm" not in demo.to_dict()["preprocess"]
    assert Config.from_json(demo.to_json()) == demo
    assert three.to_dict()["preprocess"]["slice_spacing_mm"] == 2.0 and Config.from_json(three.to_json()) == three
    with_z = demo.replace(preprocess=dataclasses.replace(demo.preprocess, slice_spacing_mm=2.0))
    assert differences(demo, with_z) == ["preprocess.slice_spacing_mm"] == differences(with_z, demo)


def uniform_valid_output(levels: int, kernel: int, wanted: int) -> int:
    """A second derivation, for the uniform net only, of ``model.shapes.valid_output_size``: the largest
    valid output length <= ``wanted`` (else the smallest valid one) along an axis of a valid U-Net with
    ``levels`` levels, two convolutions of ``kernel`` per block and pooling 2 between levels."""
    n = max(int(wanted), 1)
    while n > 1 and not _uniform_valid(levels, kernel, n):
        n -= 1
    while not _uniform_valid(levels, kernel, n):
        n += 1
    return n


def _uniform_valid(levels: int, kernel: int, out: int) -> bool:
    """Walk the sizes up from ``out`` to the input and forward again, checking every crop and pooling."""
    shrink = 2 * (kernel - 1)
    n = out
    for _ in range(levels - 1):  # up the up path: the input of each up block, then the pooled size
        n += shrink
        if n % 2:
            return False
        n //= 2
    n += shrink  # the bottom block's input
    for _ in range(levels - 1):  # down the down path again: each level's input
        n = 2 * n + shrink
    size = n  # the network's input; check it forward
    skips = []
    for _ in range(levels - 1):
        size -= shrink
        if size < 1 or size % 2:
            return False
        skips.append(size)
        size //= 2
    size -= shrink
    if size < 1:
        return False
    for skip in reversed(skips):
        size *= 2
        if skip < size or (skip - size) % 2:
            return False
        size -= shrink
        if size < 1:
            return False
    return size == out
