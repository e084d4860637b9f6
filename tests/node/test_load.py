"""The load test, bounded in count and time: 10 patients (an HBP series and a localiser each, 20
series) sent by 2 concurrent dcmtk senders; all 20 recorded, 10 segmented and sent, 10 ignored."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pydicom

from .conftest import status, storescu, wait_until
from .series import write_patient
from .test_node import finished, make_node

PATIENTS = 10


def test_twenty_series_from_two_senders_none_lost(tmp_path, node_model, start_node, storescp):
    _, dest_port, received = storescp
    node, port = make_node(tmp_path, node_model, dest_port, "--objects", "seg,sr")
    studies = [write_patient(tmp_path / "in", f"P{n:02d}", seed=n) for n in range(PATIENTS)]
    batches = [[f for s in studies[half::2] for kind in ("hbp", "localiser") for f in sorted(s[kind].iterdir())]
               for half in (0, 1)]
    process = start_node(node)
    with ThreadPoolExecutor(2) as senders:
        results = list(senders.map(lambda files: storescu(files, port), batches))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert wait_until(finished(node, 2 * PATIENTS), 150), process.text()
    rows = status(node)
    hbp = {str(pydicom.dcmread(next(s["hbp"].iterdir())).SeriesInstanceUID) for s in studies}
    assert len(rows) == 2 * PATIENTS
    assert {uid for uid, r in rows.items() if r["state"] == "done"} == hbp
    assert sum(r["state"] == "ignored" for r in rows.values()) == PATIENTS
    assert len([p for p in received.rglob("*") if p.is_file()]) == 2 * PATIENTS  # a SEG and an SR each
