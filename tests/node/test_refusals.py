"""What the node refuses, as a real process fed by dcmtk's storescu (the status of each C-STORE read
from its debug log): a spool disk under the free-space floor, an instance over the size limit and
instances over the per-association limit are answered 0xA700, an invalid Series or SOP Instance UID
0xC000, and nothing of a refused instance is written; a series with a slice missing waits one more
quiet period (a late slice completes it), then fails with the reason in ``node status``."""

from __future__ import annotations

import json
import shutil

import pydicom
import pytest

from .conftest import free_port, status, store_statuses, storescu, wait_until
from .series import SPACING, write_patient
from .test_node import finished, make_node

OK, OUT_OF_RESOURCES, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0xC000  # DICOM PS3.7 C.4.2.1.4


def set_in_config(node, **fields) -> None:
    """Change ``fields`` in ``NODE/node.json`` (the node reads it when it starts)."""
    path = node / "node.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def spooled(node) -> list[str]:
    """Every file under the spool, as ``series UID/file name`` (temporaries included)."""
    return sorted(str(p.relative_to(node / "spool")) for p in (node / "spool").rglob("*") if p.is_file())


def uids(path) -> tuple[str, str]:
    ds = pydicom.dcmread(path)
    return str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def test_spool_disk_under_the_floor_answers_out_of_resources(tmp_path, node_model, start_node):
    node, port = make_node(tmp_path, node_model, free_port())
    free_mb = shutil.disk_usage(node / "spool").free / 1e6
    set_in_config(node, min_free_mb=free_mb + 1e6)  # a floor 1 TB above what the disk has free
    files = sorted(write_patient(tmp_path / "in", "P1", localiser=False)["hbp"].iterdir())[:3]
    process = start_node(node)
    assert store_statuses(files, port) == [OUT_OF_RESOURCES] * 3, process.text()
    assert spooled(node) == [] and status(node) == {}
    assert process.text().count("store refused") == 3 and "under the floor" in process.text()


def test_instance_size_and_per_association_limits_answer_out_of_resources(tmp_path, node_model, start_node):
    node, port = make_node(tmp_path, node_model, free_port())
    set_in_config(node, max_instance_mb=0.010, max_instances_per_association=3)
    files = sorted(write_patient(tmp_path / "in", "P1", localiser=False)["hbp"].iterdir())
    big = pydicom.dcmread(files[0])
    big.ImageComments = "x" * 6000  # 8192 bytes of pixels + 6000: over 10 kB; the others are under it
    big.save_as(files[0])
    assert files[0].stat().st_size > 10_000 > files[1].stat().st_size
    process = start_node(node)
    assert store_statuses(files[:1], port) == [OUT_OF_RESOURCES]
    assert "over the limit" in process.text() and spooled(node) == []
    assert store_statuses(files[1:6], port) == [OK] * 3 + [OUT_OF_RESOURCES] * 2  # 3 per association
    assert store_statuses(files[4:6], port) == [OK] * 2  # a new association counts from 0
    series = uids(files[1])[0]
    assert spooled(node) == sorted(f"{series}/{uids(f)[1]}.dcm" for f in files[1:6])
    assert status(node)[series]["instances"] == 5


def test_an_invalid_uid_is_answered_cannot_understand_and_never_a_path(tmp_path, node_model, start_node):
    node, port = make_node(tmp_path, node_model, free_port())
    files = sorted(write_patient(tmp_path / "in", "P1", localiser=False)["hbp"].iterdir())[:3]
    for path, keyword, value in ((files[1], "SeriesInstanceUID", "../../escape"),
                                 (files[2], "SOPInstanceUID", "1.2.3.abc")):
        ds = pydicom.dcmread(path)
        with pytest.warns(UserWarning, match="Invalid value for VR UI"):
            setattr(ds, keyword, value)
            if keyword == "SOPInstanceUID":
                ds.file_meta.MediaStorageSOPInstanceUID = value
            ds.save_as(path)
    process = start_node(node)
    assert store_statuses(files, port) == [OK, CANNOT_UNDERSTAND, CANNOT_UNDERSTAND], process.text()
    series, sop = uids(files[0])
    assert spooled(node) == [f"{series}/{sop}.dcm"]
    assert not (tmp_path / "escape").exists() and not (node / "escape").exists()
    assert list(status(node)) == [series] and status(node)[series]["instances"] == 1
    assert process.text().count("is not a valid UID") == 2


def test_a_missing_slice_waits_one_more_quiet_period_then_fails(tmp_path, node_model, start_node, storescp):
    quiet = 2.0
    _, dest_port, received = storescp
    node, port = make_node(tmp_path, node_model, dest_port, "--quiet-seconds", str(quiet), "--objects", "seg")
    lost = sorted(write_patient(tmp_path / "in", "P1", localiser=False)["hbp"].iterdir())
    late = sorted(write_patient(tmp_path / "in", "P2", localiser=False, seed=2)["hbp"].iterdir())
    missing = lambda files: files[:5] + files[6:]  # noqa: E731 - slice 5 of 12 (z = 30 mm) not sent
    process = start_node(node)
    assert storescu(missing(lost) + missing(late), port).returncode == 0
    lost_uid, late_uid = uids(lost[0])[0], uids(late[0])[0]
    assert wait_until(lambda: process.text().count("waiting series=") == 2, 30), process.text()
    assert store_statuses(late[5:6], port) == [OK]  # the late slice, within the extra quiet period
    assert wait_until(finished(node, 2), 60), process.text()
    rows = status(node)
    gap = f"a gap of {2 * SPACING[2]:g} mm where the others are {SPACING[2]:g} mm"
    assert rows[lost_uid]["state"] == "failed" and gap in rows[lost_uid]["reason"], rows[lost_uid]
    assert "missing slice" in rows[lost_uid]["reason"] and "\n" not in rows[lost_uid]["reason"]
    assert rows[lost_uid]["finished"] - rows[lost_uid]["last_received"] >= quiet  # after one more quiet period
    assert rows[late_uid]["state"] == "done" and rows[late_uid]["instances"] == 12, rows[late_uid]
    assert len([p for p in received.rglob("*") if p.is_file()]) == 1  # the completed series' SEG only
    assert process.proc.poll() is None and "Traceback" not in process.text()
