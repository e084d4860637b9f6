"""The node against a real Orthanc (Debian ``orthanc``): a study sent by Orthanc comes back with its
SEG, SR and RTSTRUCT in the same study, valid for dciodvfy; ``kill -9`` of the node mid-job and an
Orthanc stopped while the node sends both end with exactly one set of results in Orthanc; results
sent by STOW-RS (``--send-to dicomweb:URL``) to Orthanc's DICOMweb plugin arrive in the same study."""

from __future__ import annotations

import io
import json
import signal

import pydicom

from .conftest import cli, free_port, status, wait_until
from .series import write_patient

RESULTS = ["MR", "MR", "OT", "RTSTRUCT", "SEG", "SR"]  # the two sources and the four objects


def make_node(tmp_path, node_model, port: int, dest_port: int, quiet: str = "1", send_to: str = "", *extra: str):
    """A node sending to Orthanc's DICOM port ``dest_port`` (or to ``send_to``)."""
    node = tmp_path / "node"
    cli("node", "init", str(node), "--model", str(node_model), "--ae", "HEPASEG", "--port", str(port),
        "--send-to", send_to or f"ORTHANC@127.0.0.1:{dest_port}", "--quiet-seconds", quiet, "--keep-hours", "0",
        *extra)
    return node


def test_a_study_sent_by_orthanc_comes_back_segmented_and_valid(tmp_path, node_model, start_node, orthanc):
    from ..dciodvfy import assert_valid

    port = free_port()
    pacs = orthanc(port)
    node = make_node(tmp_path, node_model, port, pacs.dicom)
    study = write_patient(tmp_path / "in", "P1")
    ids = [pacs.upload(study["hbp"]), pacs.upload(study["localiser"])]
    process = start_node(node)
    pacs.rest("POST", "/modalities/hepaseg/store", {"Resources": ids, "Synchronous": True})
    source = pydicom.dcmread(next(study["hbp"].iterdir()))
    assert wait_until(lambda: pacs.modalities_in(str(source.StudyInstanceUID)) == RESULTS, 120), process.text()
    found = pacs.rest("POST", "/tools/find", {"Level": "Instance", "Expand": True,
                                              "Query": {"StudyInstanceUID": str(source.StudyInstanceUID)}})
    objects = {}
    for instance in found:
        ds = pydicom.dcmread(__import__("io").BytesIO(pacs.rest("GET", f"/instances/{instance['ID']}/file")))
        if ds.Modality != "MR":
            objects[ds.Modality] = ds
            ds.save_as(tmp_path / f"{ds.Modality}.dcm")
    referenced = {str(objects["SEG"].ReferencedSeriesSequence[0].SeriesInstanceUID),
                  str(objects["RTSTRUCT"].ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
                      .RTReferencedSeriesSequence[0].SeriesInstanceUID)}
    assert referenced == {str(source.SeriesInstanceUID)}
    for modality, iod in (("SEG", "Segmentation"), ("SR", "Comprehensive3DSR"), ("RTSTRUCT", "RTStructureSet")):
        assert_valid(tmp_path / f"{modality}.dcm", iod)
    assert process.stop() == 128 + signal.SIGTERM


def test_kill_9_mid_job_and_orthanc_down_while_sending_give_one_set_of_results(tmp_path, node_model, start_node,
                                                                               orthanc):
    port = free_port()
    pacs = orthanc(port)
    node = make_node(tmp_path, node_model, port, pacs.dicom)
    study = write_patient(tmp_path / "in", "P2", localiser=False)
    uid = str(pydicom.dcmread(next(study["hbp"].iterdir())).SeriesInstanceUID)
    study_uid = str(pydicom.dcmread(next(study["hbp"].iterdir())).StudyInstanceUID)
    ids = [pacs.upload(study["hbp"])]
    process = start_node(node)
    pacs.rest("POST", "/modalities/hepaseg/store", {"Resources": ids, "Synchronous": True})
    assert wait_until(lambda: status(node).get(uid, {}).get("state") == "segmenting", 30), process.text()
    assert process.stop(signal.SIGKILL) == -signal.SIGKILL
    pacs.stop()  # the destination is down when the node comes back
    process = start_node(node)
    assert "resumed=1" in process.text()
    assert wait_until(lambda: "send failed" in process.text(), 60), process.text()
    assert status(node)[uid]["state"] == "sending" and "try 1 failed" in status(node)[uid]["reason"]
    process.stop()
    process = start_node(node)  # still sending across a restart
    assert status(node)[uid]["state"] == "sending"
    pacs.start()
    assert wait_until(lambda: status(node)[uid]["state"] == "done", 60), process.text()
    assert pacs.modalities_in(study_uid) == ["MR", "OT", "RTSTRUCT", "SEG", "SR"]
    assert len(pacs.rest("GET", "/instances")) == 12 + 4, "exactly one set of results"


def test_results_sent_by_stow_rs_arrive_in_the_study(tmp_path, node_model, start_node, orthanc):
    port = free_port()
    pacs = orthanc(port, dicomweb=True)
    node = make_node(tmp_path, node_model, port, pacs.dicom, "1", f"dicomweb:{pacs.dicomweb_url}",
                     "--objects", "seg,sr")
    study = write_patient(tmp_path / "in", "P3", localiser=False)
    source = pydicom.dcmread(next(study["hbp"].iterdir()))
    uid, study_uid = str(source.SeriesInstanceUID), str(source.StudyInstanceUID)
    ids = [pacs.upload(study["hbp"])]
    process = start_node(node)
    pacs.rest("POST", "/modalities/hepaseg/store", {"Resources": ids, "Synchronous": True})
    assert wait_until(lambda: status(node).get(uid, {}).get("state") == "done", 90), process.text()
    assert f"to=dicomweb:{pacs.dicomweb_url}" in process.text()
    assert pacs.modalities_in(study_uid) == ["MR", "SEG", "SR"]
    sent = json.loads(status(node)[uid]["sent"])  # {file name: SOP Instance UID}, acknowledged by STOW-RS
    found = pacs.rest("POST", "/tools/find", {"Level": "Instance", "Expand": True,
                                              "Query": {"StudyInstanceUID": study_uid}})
    ids = {i["MainDicomTags"]["SOPInstanceUID"]: i["ID"] for i in found}
    assert sorted(sent) == ["report.dcm", "segmentation.dcm"] and set(sent.values()) <= set(ids)
    seg = pydicom.dcmread(io.BytesIO(pacs.rest("GET", f"/instances/{ids[sent['segmentation.dcm']]}/file")))
    assert seg.Modality == "SEG" and str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID) == uid
