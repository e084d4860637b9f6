"""Sending results when the destination fails (``node.sender``): one-line ``SendError`` reasons, backoff.

The destinations are real: a port nobody listens on, and a local HTTP server that answers STOW-RS with
an error status or with a refusal of every instance (its ``FailedSOPSequence``), as a PACS does.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hepaseg.node.config import Destination
from hepaseg.node.sender import SendError, backoff, send_files

from .series import write_patient


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def series_files(tmp_path_factory) -> list[Path]:
    folder = write_patient(tmp_path_factory.mktemp("patient"), "P1", localiser=False)["hbp"]
    return sorted(folder.iterdir())[:2]


class _Refusing(BaseHTTPRequestHandler):
    """STOW-RS answers: ``/fail`` a 503, ``/refuse`` a 409 whose body refuses every instance."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path.startswith("/refuse"):
            body = json.dumps({"00081198": {"vr": "SQ", "Value": [{}, {}]}}).encode()
            self.send_response(409)
            self.send_header("Content-Type", "application/dicom+json")
        else:
            body = b"down for maintenance"
            self.send_response(503)
            self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def web_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _one_line_error(destination: Destination, files: list[Path]) -> str:
    with pytest.raises(SendError) as caught:
        send_files(destination, files, "HEPASEG")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(destination.describe())
    return message


def test_an_unreachable_destination_is_one_line_for_dimse_and_stow(series_files):
    port = _free_port()
    _one_line_error(Destination(ae="PACS", host="127.0.0.1", port=port), series_files)
    _one_line_error(Destination(url=f"http://127.0.0.1:{port}/dicom-web"), series_files)


def test_a_stow_server_error_is_one_line(series_files, web_server):
    message = _one_line_error(Destination(url=f"{web_server}/fail"), series_files)
    assert "503" in message


def test_a_stow_refusal_of_the_instances_is_reported(series_files, web_server):
    message = _one_line_error(Destination(url=f"{web_server}/refuse"), series_files)
    assert "409" in message or f"of {len(series_files)} instances" in message


def test_backoff_doubles_up_to_the_longest_wait():
    assert [backoff(n, 5.0, 60.0) for n in range(1, 7)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert backoff(0, 5.0, 60.0) == 5.0
