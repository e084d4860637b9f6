"""Configuration values (``hepaseg.config``): assignments, and fields left out at their default."""

from __future__ import annotations

import dataclasses

import pytest

from hepaseg.config import Config, demo_config, paper_config, preset, with_assignments
from hepaseg.errors import InputError


def test_assignments_change_exactly_the_named_fields():
    base = demo_config()
    changed = with_assignments(base, ["train.iterations=3000", 'patch.tumor_sampling="voxel"',
                                      "train.betas=[0.8, 0.9]"])
    assert changed.train.iterations == 3000 and changed.patch.tumor_sampling == "voxel"
    assert changed.train.betas == (0.8, 0.9)  # JSON lists become tuples, as in stored configurations
    assert changed == base.replace(train=dataclasses.replace(base.train, iterations=3000, betas=(0.8, 0.9)),
                                   patch=dataclasses.replace(base.patch, tumor_sampling="voxel"))
    with pytest.raises(InputError, match="unknown configuration field 'train.nope'"):
        with_assignments(base, ["train.nope=1"])
    with pytest.raises(InputError, match="not a JSON value"):
        with_assignments(base, ["train.lr_schedule=cosine"])  # a string needs its quotes


def test_fields_added_later_are_stored_only_when_not_at_their_default():
    paper = paper_config().to_dict()
    assert "tumor_sampling" not in paper["patch"] and "slice_spacing_mm" not in paper["preprocess"]
    assert "lesion_fraction" not in paper["patch"]
    demo = demo_config()
    assert demo.to_dict()["patch"]["tumor_sampling"] == "lesion"
    liver = preset("demo-liver")
    assert liver.to_dict()["patch"]["lesion_fraction"] == 0.5
    for config in (paper_config(), demo, liver):  # the round trip restores the defaults that were left out
        assert Config.from_dict(config.to_dict()) == config
