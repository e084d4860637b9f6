"""Fixtures of the rating tests: a synthetic cohort, a study folder, rating folders, a live server.

The study folder is made by hand rather than by ``hepaseg study`` (which trains for a minute): its
``preds/<algorithm>/`` hold, per test and unlabeled case, the hidden true tumour mask (the first
algorithm) and that mask eroded by one voxel (the second), so every contour is known.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

SERVER_LIFETIME_S = 120  # a test server stops by itself after this long ...
SERVER_MAX_REQUESTS = 5000  # ... or after this many requests


def make_study(manifest: Path, folder: Path, algorithms: Sequence[str] = ("A1", "A2")) -> Path:
    """A study folder with the predictions described in the module docstring; returns it."""
    from scipy import ndimage

    from hepaseg.data.manifest import load_manifest
    from hepaseg.io.volumes import read_volume, write_volume

    dataset = load_manifest(manifest)
    for case in dataset.cases:
        if case.split not in ("test", "unlabeled"):
            continue
        truth = read_volume(case.image.parent / "tumor_truth.nii.gz")
        masks = (truth.array != 0, ndimage.binary_erosion(truth.array != 0))
        for algorithm, mask in zip(algorithms, masks):
            write_volume(mask.astype(np.uint8), truth.affine, folder / "preds" / algorithm / f"{case.id}.nii.gz")
    (folder / "eval").mkdir(parents=True)
    (folder / "eval" / "evaluation.json").write_text(json.dumps({"manifest": str(manifest)}))
    return folder


@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> Path:
    """The small synthetic cohort (seed 3): 2 test cases and 1 unlabeled case to rate."""
    from hepaseg.synth import write_cohort

    return write_cohort(tmp_path_factory.mktemp("cohort"), seed=3, small=True, workers=1, progress=False)


@pytest.fixture(scope="session")
def study(cohort, tmp_path_factory) -> Path:
    return make_study(cohort, tmp_path_factory.mktemp("study") / "study")


@pytest.fixture
def rating(study, tmp_path):
    """``rating(raters=("R3",), **init_rating options)``: a new rating folder from ``study``;
    returns ``InitResult``."""
    from hepaseg.rating import init_rating

    def make(raters: Sequence[str] = ("R3",), **options):
        return init_rating(study, tmp_path / f"rating-{len(list(tmp_path.iterdir()))}", raters, **options)

    return make


@contextlib.contextmanager
def live_server(folder: Path) -> Iterator[str]:
    """Serve a rating folder on 127.0.0.1 (a free port) in a thread; yields the base URL.

    The server stops when the block ends, and by itself after ``SERVER_LIFETIME_S`` seconds or
    ``SERVER_MAX_REQUESTS`` requests.
    """
    import uvicorn

    from hepaseg.rating.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(folder), host="127.0.0.1", port=port, log_level="warning",
                            server_header=False, limit_max_requests=SERVER_MAX_REQUESTS,
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    timer = threading.Timer(SERVER_LIFETIME_S, lambda: setattr(server, "should_exit", True))
    timer.daemon = True
    thread.start()
    timer.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            thread.join(0.01)
        assert server.started, "the test server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        timer.cancel()
        thread.join(10)
        sock.close()


@pytest.fixture
def serve():
    """``with serve(folder) as url``: ``live_server``."""
    return live_server
