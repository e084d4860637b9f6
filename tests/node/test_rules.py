"""The series selector: the default rules on the vendors' names, the first failed condition as the
reason, and malformed rules refused in one line."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from hepaseg.errors import InputError
from hepaseg.node.rules import DEFAULT_RULES, check_rules, select


def series(description="t1_vibe_fs_tra_20min", image_type=("ORIGINAL", "PRIMARY", "M", "ND"), n=40,
           orientation=(1, 0, 0, 0, 1, 0), modality="MR", thickness=3.0, **tags) -> list[Dataset]:
    ds = Dataset()
    ds.Modality, ds.SeriesDescription, ds.ImageType = modality, description, list(image_type)
    ds.ImageOrientationPatient, ds.SliceThickness = list(orientation), thickness
    for key, value in tags.items():
        setattr(ds, key, value)
    return [ds] * n


@pytest.mark.parametrize("description", [
    "t1_vibe_fs_tra_20min", "t1_vibe_fs_tra_HBP", "Ax LAVA-Flex 20 min", "Ax LAVA HBP", "Delayed 20min",
    "eTHRIVE_HBP", "THRIVE late", "sT1W_THRIVE Hepatobiliary", "VIBE leberspezifisch", "T1 Spätphase",
    "T1 hépatobiliaire", "T1 phase tardive"])
def test_the_default_rules_pick_the_vendors_hepatobiliary_names(description):
    assert select(DEFAULT_RULES, series(description)).selection == "hepatobiliary phase"


@pytest.mark.parametrize("description", ["t1_vibe_fs_tra_arterial", "Ax LAVA portal venous", "T2 HASTE",
                                         "translated", "DWI b800"])
def test_other_phases_are_ignored_naming_the_description(description):
    verdict = select(DEFAULT_RULES, series(description))
    assert verdict.selection is None and verdict.reason == f"SeriesDescription {description!r} does not match"


def test_the_first_failed_condition_is_the_reason():
    localiser = series("localizer", ("ORIGINAL", "PRIMARY", "LOCALIZER"), n=3)
    assert select(DEFAULT_RULES, localiser).reason == "ImageType includes LOCALIZER"
    assert select(DEFAULT_RULES, series(modality="CT")).reason == "Modality 'CT' does not match"
    derived = series(image_type=("DERIVED", "SECONDARY", "SUBTRACTION"))
    assert select(DEFAULT_RULES, derived).reason == "ImageType includes DERIVED, SECONDARY"
    coronal = series(orientation=(1, 0, 0, 0, 0, -1))
    assert select(DEFAULT_RULES, coronal).reason == "not axial (slice normal 90 deg from head-feet)"
    assert select(DEFAULT_RULES, series(n=6)).reason == "6 slices < 10"
    assert select(DEFAULT_RULES, series(thickness=12.0)).reason == "SliceThickness 12 outside [0.5, 10]"


def test_own_rules_with_a_contrast_agent_and_two_selections():
    rules = check_rules({"selections": [
        {"name": "eob", "conditions": [{"tag": "ContrastBolusAgent", "present": True},
                                       {"tag": "ImageType", "includes": ["original", "PRIMARY"]}]},
        {"name": "named", "conditions": [{"tag": "SeriesDescription", "regex": "^liver$"}]}]}, "rules.json")
    assert select(rules, series(ContrastBolusAgent="Primovist")).selection == "eob"
    assert select(rules, series("LIVER")).selection == "named"
    verdict = select(rules, series("abdomen", image_type=("DERIVED",)))
    assert verdict.reason == "eob: ContrastBolusAgent missing; named: SeriesDescription 'abdomen' does not match"


@pytest.mark.parametrize("rules, fragment", [
    ({}, '"selections"'), ({"selections": [{"conditions": {}}]}, "needs \"conditions\""),
    ({"selections": [{"conditions": [{"tag": "X", "regex": "("}]}]}, "bad regular expression"),
    ({"selections": [{"conditions": [{"tag": "X", "range": [1]}]}]}, "range must be [low, high]"),
    ({"selections": [{"conditions": [{"tag": "X", "regex": "a", "present": True}]}]}, "expected"),
])
def test_malformed_rules_are_one_line(rules, fragment):
    with pytest.raises(InputError) as raised:
        check_rules(rules, "rules.json")
    assert fragment in str(raised.value) and str(raised.value).startswith("rules.json: ")
    assert "\n" not in str(raised.value)
