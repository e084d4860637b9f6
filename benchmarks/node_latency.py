"""Seconds from the last instance leaving Orthanc to the SEG and SR stored in Orthanc, per series, and
series per hour under the load test; prints JSON. Needs the Debian packages orthanc and dcmtk.

The latency case: ``--cases`` patients with a 512 x 512 x 80 hepatobiliary-phase series (0.75 x 0.75
x 3 mm, the tests' phantom scaled up) uploaded to a fresh Orthanc on localhost, then sent to a node
(``hepaseg node run`` as its own process) with ``POST /modalities/hepaseg/store`` (synchronous: it
returns once the last instance was acknowledged); the clock stops when Orthanc holds the study's SEG
and SR (polled every 0.2 s). The load: the tests' load test (10 patients of 64 x 64 x 12, an HBP
series and a localiser each, 2 concurrent storescu senders), series per hour = 20 / wall seconds
from the first instance sent to the last result acknowledged x 3600.

The model: ``--model`` (a model folder with its liver model), or by default the demo preset's tumour
and liver networks with hand-set weights (``tests/node/series.py``: real network sizes, so real
compute; the masks are known).

Usage:
    .venv/bin/python benchmarks/node_latency.py
    .venv/bin/python benchmarks/node_latency.py --model model/ --cases 3 --quiet-seconds 5
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' phantom, model and tool helpers

import pydicom  # noqa: E402

from hepaseg.presets import liver_preset_for, preset  # noqa: E402
from tests.node.conftest import NodeProcess, Orthanc, cli, free_port, status, storescu, wait_until  # noqa: E402
from tests.node.series import model_folder, write_patient  # noqa: E402


def make_node(root: Path, model: Path, port: int, dest_port: int, quiet: float) -> Path:
    node = root / "node"
    cli("node", "init", str(node), "--model", str(model), "--ae", "HEPASEG", "--port", str(port), "--send-to",
        f"ORTHANC@127.0.0.1:{dest_port}", "--quiet-seconds", str(quiet), "--objects", "seg,sr")
    return node


def latency(root: Path, model: Path, cases: int, quiet: float) -> list[float]:
    port = free_port()
    pacs = Orthanc(root / "orthanc", port)
    node = make_node(root, model, port, pacs.dicom, quiet)
    process = NodeProcess(node)
    seconds = []
    try:
        for n in range(cases):
            study = write_patient(root / "in", f"L{n}", localiser=False, seed=n, shape=(512, 512, 80),
                                  spacing=(0.75, 0.75, 3.0))
            ids = [pacs.upload(study["hbp"])]
            study_uid = str(pydicom.dcmread(next(study["hbp"].iterdir())).StudyInstanceUID)
            pacs.rest("POST", "/modalities/hepaseg/store", {"Resources": ids, "Synchronous": True})
            t0 = time.perf_counter()
            assert wait_until(lambda: {"SEG", "SR"} <= set(pacs.modalities_in(study_uid)), 900), process.text()
            seconds.append(round(time.perf_counter() - t0, 2))
    finally:
        process.stop()
        pacs.stop()
    return seconds


def load(root: Path, model: Path, quiet: float, patients: int = 10) -> dict:
    dest = Orthanc(root / "orthanc-load", 1)
    node = make_node(root / "load", model, port := free_port(), dest.dicom, quiet)
    studies = [write_patient(root / "load-in", f"P{n:02d}", seed=n) for n in range(patients)]
    batches = [[f for s in studies[h::2] for kind in ("hbp", "localiser") for f in sorted(s[kind].iterdir())]
               for h in (0, 1)]
    process = NodeProcess(node)
    try:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(2) as senders:
            list(senders.map(lambda files: storescu(files, port), batches))
        final = ("done", "ignored", "failed")
        assert wait_until(lambda: sum(r["state"] in final for r in status(node).values()) == 2 * patients, 900)
        wall = time.perf_counter() - t0
        states = [r["state"] for r in status(node).values()]
    finally:
        process.stop()
        dest.stop()
    return {"series": 2 * patients, "wall_s": round(wall, 1), "series_per_hour": round(2 * patients / wall * 3600),
            "segmented_per_hour": round(patients / wall * 3600), "states": {s: states.count(s) for s in set(states)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a model folder (default: hand-set demo-preset networks)")
    parser.add_argument("--cases", type=int, default=1, help="512 x 512 x 80 series timed (default 1)")
    parser.add_argument("--quiet-seconds", type=float, default=2.0, help="the node's quiet time (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        demo = preset("demo")
        model = args.model or model_folder(root / "model", demo, liver_preset_for(demo))
        result = {"model": str(args.model) if args.model else "demo preset, hand-set weights",
                  "quiet_seconds": args.quiet_seconds, "machine": platform.processor() or platform.machine(),
                  "latency_s_512x512x80": latency(root, model, args.cases, args.quiet_seconds),
                  "load": load(root, model, args.quiet_seconds)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
