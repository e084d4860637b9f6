"""``hepaseg node`` as a real process, fed by dcmtk's storescu (an independent sender) and sending to
dcmtk's storescp: a study's HBP series segmented and its localiser ignored, an unknown AE rejected,
a series sent twice segmented once, a bad series failing in one line while the node keeps running."""

from __future__ import annotations

import json
import signal
import subprocess

import highdicom as hd
import numpy as np
import pydicom

from .conftest import cli, need, status, storescu, wait_until
from .series import write_patient

QUIET = "1"


def make_node(tmp_path, node_model, dest_port: int, *extra: str):
    from .conftest import free_port

    port = free_port()
    node = tmp_path / "node"
    cli("node", "init", str(node), "--model", str(node_model), "--ae", "HEPASEG", "--port", str(port),
        "--send-to", f"DEST@127.0.0.1:{dest_port}", "--allow", "SCANNER@127.0.0.1", "--quiet-seconds", QUIET,
        "--keep-hours", "0", *extra)
    return node, port


def finished(node, n: int):
    return lambda: len([r for r in status(node).values() if r["state"] in ("done", "ignored", "failed")]) >= n


def test_hbp_segmented_localiser_ignored_results_received(tmp_path, node_model, start_node, storescp):
    _, dest_port, received = storescp
    node, port = make_node(tmp_path, node_model, dest_port)
    study = write_patient(tmp_path / "in", "P1")
    process = start_node(node)
    sent = storescu(sorted(study["hbp"].iterdir()) + sorted(study["localiser"].iterdir()), port)
    assert sent.returncode == 0, sent.stderr
    assert wait_until(finished(node, 2), 90), process.text()
    hbp_uid = str(pydicom.dcmread(next(study["hbp"].iterdir())).SeriesInstanceUID)
    loc_uid = str(pydicom.dcmread(next(study["localiser"].iterdir())).SeriesInstanceUID)
    rows = status(node)
    assert rows[loc_uid]["state"] == "ignored" and rows[loc_uid]["reason"] == "ImageType includes LOCALIZER"
    assert rows[hbp_uid]["state"] == "done", rows[hbp_uid]
    assert sorted(json.loads(rows[hbp_uid]["sent"])) == ["overview.dcm", "report.dcm", "rtstruct.dcm",
                                                          "segmentation.dcm"]
    objects = [pydicom.dcmread(p) for p in received.rglob("*") if p.is_file()]
    assert sorted(ds.Modality for ds in objects) == ["OT", "RTSTRUCT", "SEG", "SR"]
    source = pydicom.dcmread(next(study["hbp"].iterdir()))
    assert {str(ds.StudyInstanceUID) for ds in objects} == {str(source.StudyInstanceUID)}
    seg = hd.seg.Segmentation.from_dataset(next(ds for ds in objects if ds.Modality == "SEG"))
    labels = [seg.get_segment_description(n).segment_label for n in seg.get_segment_numbers()]
    assert labels == ["Liver", "Lesion 1"]  # the phantom's one tumour
    assert str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID) == hbp_uid
    # the segmenting thread cleans at its next poll after the acknowledgement (--keep-hours 0)
    assert wait_until(lambda: not (node / "spool" / hbp_uid).exists(), 10), "the spool is cleaned once acknowledged"
    text = cli("node", "status", str(node)).stdout
    assert f"{loc_uid}  ignored" in text and "reason: ImageType includes LOCALIZER" in text
    assert process.stop() == 128 + signal.SIGTERM
    assert "Traceback" not in process.text()


def test_unknown_ae_rejected_echo_answered_duplicates_once_bad_series_fails(tmp_path, node_model, start_node,
                                                                           storescp):
    echoscu = need("echoscu", "dcmtk")
    _, dest_port, received = storescp
    node, port = make_node(tmp_path, node_model, dest_port, "--objects", "seg")
    process = start_node(node)
    ok = subprocess.run([echoscu, "-aet", "SCANNER", "-aec", "HEPASEG", "127.0.0.1", str(port)], capture_output=True)
    bad = subprocess.run([echoscu, "-aet", "INTRUDER", "-aec", "HEPASEG", "127.0.0.1", str(port)],
                         capture_output=True, text=True)
    assert ok.returncode == 0 and bad.returncode != 0
    assert "association rejected" in process.text() and "INTRUDER" in process.text()
    assert storescu(sorted((write_patient(tmp_path / "x", "P9")["hbp"]).iterdir()), port, "INTRUDER").returncode != 0
    assert status(node) == {}

    study = write_patient(tmp_path / "in", "P2", localiser=False)
    files = sorted(study["hbp"].iterdir())
    assert storescu(files, port).returncode == 0
    assert storescu(files, port).returncode == 0  # the same instances again, before and after completion
    empty = write_patient(tmp_path / "in", "P3", localiser=False, seed=3)["hbp"]
    for k, f in enumerate(sorted(empty.iterdir())):  # no liver: one grey body with a bright 43 mL cube
        ds = pydicom.dcmread(f)
        pixels = np.where(ds.pixel_array > 300, 600, ds.pixel_array)
        pixels[28:38, 28:38] = 900 if 2 <= k < 10 else 600
        ds.PixelData = pixels.astype("<i2").tobytes()
        ds.save_as(f)
    assert storescu(sorted(empty.iterdir()), port).returncode == 0
    assert wait_until(finished(node, 2), 90), process.text()
    assert storescu(files, port).returncode == 0
    rows = status(node)
    hbp = rows[str(pydicom.dcmread(files[0]).SeriesInstanceUID)]
    failed = rows[str(pydicom.dcmread(next(empty.iterdir())).SeriesInstanceUID)]
    assert hbp["state"] == "done" and hbp["instances"] == len(files)
    assert failed["state"] == "failed" and "implausible liver" in failed["reason"] and "\n" not in failed["reason"], failed
    assert len([p for p in received.rglob("*") if p.is_file()]) == 1, "one SEG: segmented and sent once"
    assert process.proc.poll() is None and "Traceback" not in process.text()
    assert process.text().count(" sent ") == 1
