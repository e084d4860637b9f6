"""Configuration values (``hepaseg.config``): assignments, and fields left out at their default."""

from __future__ import annotations

import dataclasses

import pytest

from hepaseg.config import Config, with_assignments

from hepaseg.presets import demo_config, paper_config, preset
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
    assert "lesion_fraction" not in paper["patch"] and "batch_producers" not in paper["train"]
    demo = demo_config()
    assert demo.to_dict()["patch"]["tumor_sampling"] == "lesion"
    liver = preset("demo-liver")
    assert liver.to_dict()["patch"]["lesion_fraction"] == 0.5
    for config in (paper_config(), demo, liver):  # the round trip restores the defaults that were left out
        assert Config.from_dict(config.to_dict()) == config


def test_a_configuration_of_hepaseg_0_1_reads_its_kernels_in_mm():
    """hepaseg 0.1 stored ``infer.border_erosion_size`` / ``opening_size`` in voxels of the prepared grid:
    read back, they are mm of that grid (7 / 3 voxels at the demo's 2 mm: 14 / 6 mm, the demo preset today)."""
    for config, spacing in ((demo_config(), 2.0), (paper_config(), 1.0), (preset("demo-liver"), 4.0)):
        old = config.to_dict()
        assert old["preprocess"]["inplane_spacing_mm"] == spacing
        del old["infer"]["border_erosion_mm"], old["infer"]["opening_mm"]
        old["infer"].update(border_erosion_size=7, opening_size=3)
        read = Config.from_dict(old)
        assert (read.infer.border_erosion_mm, read.infer.opening_mm) == (7 * spacing, 3 * spacing)
        if config.preset != "demo-liver":  # the liver presets' border opening is off; its sizes never mattered
            assert read == config
    assert (demo_config().infer.border_erosion_mm, demo_config().infer.opening_mm) == (14.0, 6.0)
    missing_spacing = {"infer": {"border_erosion_size": 5, "opening_size": 1}}  # the 1 mm default grid
    assert (Config.from_dict(missing_spacing).infer.border_erosion_mm, Config.from_dict(missing_spacing).infer.opening_mm) \
        == (5.0, 1.0)


def test_every_configuration_field_decides_some_stage():
    """The stage table (``config.DECIDES``) claims every field of every block, so no field can change a
    result without changing some stage's fingerprint."""
    from hepaseg.config import DECIDES

    claimed = {name for names in DECIDES.values() for name in names}
    for block, fields in dataclasses.asdict(paper_config()).items():
        if block == "preset":
            continue
        for name in fields:
            assert block in claimed or f"{block}.{name}" in claimed, f"{block}.{name} decides no stage"


def test_stage_values_hold_exactly_the_deciding_fields():
    from hepaseg.config import stage_values

    cfg = demo_config()
    assert stage_values(cfg, "evaluate") == {"evaluate": dataclasses.asdict(cfg.evaluate)}
    selection = stage_values(cfg, "selection")["select"]
    assert "check_runs" not in selection and selection["runs"] == 4 and selection["max_iterations"] == 3000
    training = stage_values(cfg, "training")
    assert training["infer"] == {"tile_output_size": (96, 96, 32), "threshold": 0.5}  # validation uses them
    # every train field but batch_producers, which decides how fast batches come, not which (SPEED_ONLY)
    assert training["train"] == {k: v for k, v in dataclasses.asdict(cfg.train).items() if k != "batch_producers"}
    producers = cfg.replace(train=dataclasses.replace(cfg.train, batch_producers=3))
    assert stage_values(producers, "training") == training


def test_the_number_of_batch_producers_is_stored_only_when_set_and_may_change_on_resume():
    from hepaseg.config import resume_conflicts

    cfg = demo_config()
    assert "batch_producers" not in cfg.to_dict()["train"]
    three = cfg.replace(train=dataclasses.replace(cfg.train, batch_producers=3))
    assert three.to_dict()["train"]["batch_producers"] == 3 and Config.from_dict(three.to_dict()) == three
    for scope in ("training", "selection", "study"):
        assert resume_conflicts(scope, cfg, three) == [] == resume_conflicts(scope, three, cfg)


def test_resume_conflicts_by_scope():
    from hepaseg.config import resume_conflicts

    cfg = demo_config()

    def changed(**blocks):
        return cfg.replace(**{k: dataclasses.replace(getattr(cfg, k), **v) for k, v in blocks.items()})

    longer = changed(train={"iterations": 9000})
    assert resume_conflicts("training", cfg, longer) == []  # a run may be trained further
    assert resume_conflicts("selection", cfg, longer) == ["train.iterations"]
    assert resume_conflicts("study", cfg, longer) == ["train.iterations"]
    no_check = changed(select={"check_runs": False})
    assert resume_conflicts("study", cfg, no_check) == [] == resume_conflicts("selection", cfg, no_check)
    tta_off = changed(infer={"tta": False})  # decides predictions, not a training run
    assert resume_conflicts("training", cfg, tta_off) == [] == resume_conflicts("selection", cfg, tta_off)
    assert resume_conflicts("study", cfg, tta_off) == ["infer.tta"]
    assert resume_conflicts("training", cfg, changed(infer={"threshold": 0.4})) == ["infer.threshold"]
    assert resume_conflicts("training", cfg, changed(select={"eta": 3})) == []
    assert resume_conflicts("selection", cfg, changed(select={"eta": 3})) == ["select.eta"]
