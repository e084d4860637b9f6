"""Which received series are segmented: rules on their DICOM tags, in the style of MONAI Deploy's
series selector (docs/node.md, "Rules").

Rules are JSON: ``{"selections": [{"name": ..., "conditions": [...]}, ...]}``. A series is selected
by the first selection all of whose conditions hold; otherwise it is ignored, with the first
condition each selection failed as the reason. A condition is one of:

- ``{"tag": K, "regex": R}``: the tag's value (multi-valued: joined by ``\\``) matches the regular
  expression R anywhere, case-insensitively;
- ``{"tag": K, "includes": [...]}`` / ``{"tag": K, "excludes": [...]}``: every / none of these values
  among the tag's values (``ImageType``: ``ORIGINAL``, ``PRIMARY``, ``LOCALIZER``, ...; any case);
- ``{"tag": K, "range": [low, high]}``: a number within [low, high] (``SliceThickness`` in mm);
- ``{"tag": K, "present": true}``: the tag holds a non-empty value (``ContrastBolusAgent``);
- ``{"axial": true}``: the slice normal lies within ``AXIAL_TOLERANCE_DEG`` of the patient's
  head-feet axis;
- ``{"min_slices": N}``: at least N slices (files, or frames of one enhanced object).

Tags are read from the series' first header; K is a DICOM keyword.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

AXIAL_TOLERANCE_DEG = 30.0
# common names of the hepatobiliary phase (Gd-EOB-DTPA, 10-20 min after injection) on Siemens
# ("t1_vibe_fs_tra_20min", "HBP"), GE ("Ax LAVA Flex 20 min", "Delayed") and Philips ("eTHRIVE HBP",
# "THRIVE late"), with German ("leberspezifisch", "Spätphase") and French ("hépatobiliaire", "tardif")
# spellings; a word may follow an underscore or a digit, not a letter
HBP_DESCRIPTION = (r"(?<![a-z])(hbp|hepatobil|h[eé]patobiliaire|leberspezif|leberphase|(1[05]|20|25|30) ?min"
                   r"|delay|late(?![a-z])|sp[aä]t|spaet|tardi|primovist|eovist)")
DEFAULT_RULES = {"selections": [{"name": "hepatobiliary phase", "conditions": [
    {"tag": "Modality", "regex": "^MR$"},
    {"tag": "ImageType", "excludes": ["LOCALIZER", "DERIVED", "SECONDARY"]},
    {"tag": "SeriesDescription", "regex": HBP_DESCRIPTION},
    {"axial": True},
    {"min_slices": 10},
    {"tag": "SliceThickness", "range": [0.5, 10.0]},
]}]}
KINDS = ("regex", "includes", "excludes", "range", "present")


@dataclass(frozen=True)
class Verdict:
    """A series against the rules: ``selection`` (its name) when selected, else the ``reason``."""

    selection: str | None
    reason: str = ""


def check_rules(rules: object, where: str | Path) -> dict:
    """``rules`` itself when well formed; InputError naming ``where`` and the first malformed part."""
    selections = rules.get("selections") if isinstance(rules, dict) else None
    if not isinstance(selections, list) or not selections:
        raise InputError(where, 'rules need "selections": a non-empty list')
    for n, selection in enumerate(selections, start=1):
        conditions = selection.get("conditions") if isinstance(selection, dict) else None
        if not isinstance(conditions, list):
            raise InputError(where, f'rules: selection {n} needs "conditions": a list')
        for condition in conditions:
            problem = _condition_problem(condition)
            if problem:
                raise InputError(where, f"rules: selection {n}: {problem}")
    return rules


def read_rules(path: str | Path) -> dict:
    """The rules in the JSON file ``path``; InputError where it cannot be read or is malformed."""
    import json

    try:
        rules = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read the rules ({exc})") from exc
    return check_rules(rules, path)


def select(rules: dict, headers: Sequence) -> Verdict:
    """The verdict of the rules on one series given by its headers (pydicom datasets, at least one)."""
    reasons = []
    for selection in rules["selections"]:
        failed = next((why for c in selection["conditions"] if (why := _failure(c, headers))), None)
        if failed is None:
            return Verdict(selection.get("name", "selected"))
        reasons.append(f"{selection.get('name', 'rule')}: {failed}" if len(rules["selections"]) > 1 else failed)
    return Verdict(None, "; ".join(reasons))


def _condition_problem(condition: object) -> str | None:
    """What is wrong with one condition (None: nothing)."""
    if not isinstance(condition, dict):
        return f"a condition must be an object, not {condition!r}"
    if "axial" in condition or "min_slices" in condition:
        return None if len(condition) == 1 else f"{condition}: 'axial' and 'min_slices' stand alone"
    kinds = [k for k in KINDS if k in condition]
    if not isinstance(condition.get("tag"), str) or len(kinds) != 1 or len(condition) != 2:
        return f"{condition}: expected {{\"tag\": KEYWORD, one of {', '.join(KINDS)}: ...}}"
    value = condition[kinds[0]]
    if kinds[0] == "regex":
        try:
            re.compile(value)
        except (re.error, TypeError) as exc:
            return f"{condition}: bad regular expression ({exc})"
    if kinds[0] == "range" and not (isinstance(value, list) and len(value) == 2
                                    and all(isinstance(v, (int, float)) for v in value)):
        return f"{condition}: range must be [low, high]"
    if kinds[0] in ("includes", "excludes") and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return f"{condition}: {kinds[0]} must be a list of strings"
    return None


def _values(ds, keyword: str) -> list[str]:
    """The tag's values as strings (empty where absent)."""
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    items = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    return [str(v).strip() for v in items if str(v).strip()]


def _failure(condition: dict, headers: Sequence) -> str | None:
    """Why the series fails ``condition`` (None: it holds)."""
    first = headers[0]
    if "min_slices" in condition:
        slices = max(len(headers), int(first.get("NumberOfFrames", 1) or 1))
        return None if slices >= condition["min_slices"] else f"{slices} slices < {condition['min_slices']}"
    if "axial" in condition:
        angle = _normal_angle(first)
        if angle is None:
            return "no ImageOrientationPatient (axial?)"
        return None if angle <= AXIAL_TOLERANCE_DEG else f"not axial (slice normal {angle:.0f} deg from head-feet)"
    tag = condition["tag"]
    values = _values(first, tag)
    if "present" in condition:
        return None if bool(values) == bool(condition["present"]) else f"{tag} {'missing' if values == [] else 'present'}"
    if not values:
        return f"{tag} missing"
    if "regex" in condition:
        text = "\\".join(values)
        return None if re.search(condition["regex"], text, re.IGNORECASE) else f"{tag} {text!r} does not match"
    upper = {v.upper() for v in values}
    if "includes" in condition:
        lacking = [v for v in condition["includes"] if v.upper() not in upper]
        return f"{tag} lacks {', '.join(lacking)}" if lacking else None
    if "excludes" in condition:
        found = [v for v in condition["excludes"] if v.upper() in upper]
        return f"{tag} includes {', '.join(found)}" if found else None
    low, high = condition["range"]
    try:
        number = float(values[0])
    except ValueError:
        return f"{tag} {values[0]!r} is not a number"
    return None if low <= number <= high else f"{tag} {number:g} outside [{low:g}, {high:g}]"


def _normal_angle(ds) -> float | None:
    """Degrees between the slice normal and the head-feet axis (None: no orientation)."""
    orientation = ds.get("ImageOrientationPatient")
    if orientation is None and "SharedFunctionalGroupsSequence" in ds:
        groups = ds.SharedFunctionalGroupsSequence[0]
        if "PlaneOrientationSequence" in groups:
            orientation = groups.PlaneOrientationSequence[0].ImageOrientationPatient
    if orientation is None or len(orientation) != 6:
        return None
    r, c = [float(v) for v in orientation[:3]], [float(v) for v in orientation[3:]]
    normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    length = math.sqrt(sum(v * v for v in normal)) or 1.0
    return math.degrees(math.acos(min(1.0, abs(normal[2]) / length)))
