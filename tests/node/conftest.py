"""Fixtures of the node tests: the hand-set model folder, free ports, real node processes, a real
Orthanc (Debian ``orthanc``) and dcmtk's tools; tests needing a missing tool skip, saying which."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .series import model_folder

ROOT = Path(__file__).resolve().parents[2]
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")  # Debian orthanc-dicomweb


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout_s: float, poll_s: float = 0.2) -> bool:
    """Whether ``condition()`` became true within ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return bool(condition())


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (Debian package {package}; make test installs it as root)")
    return path


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``hepaseg ARGS`` in a new process."""
    done = subprocess.run([sys.executable, "-m", "hepaseg", *args], capture_output=True, text=True, env=node_env(),
                          timeout=120)
    assert not check or done.returncode == 0, done.stderr
    return done


def node_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def status(node: Path) -> dict[str, dict]:
    """``hepaseg node status --json`` by series UID."""
    return {row["uid"]: row for row in json.loads(cli("node", "status", str(node), "--json").stdout)}


class NodeProcess:
    """``hepaseg node run NODE`` as a real process; its log in ``NODE.log``."""

    def __init__(self, node: Path) -> None:
        self.node, self.log_path = node, node.with_suffix(".log")
        self.log = self.log_path.open("a")
        self.start = self.log_path.stat().st_size  # earlier runs' lines come before
        self.proc = subprocess.Popen([sys.executable, "-m", "hepaseg", "node", "run", str(node)], env=node_env(),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        assert wait_until(lambda: " listening " in self.text() or self.proc.poll() is not None, 60)
        assert self.proc.poll() is None, self.text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(30)
        self.log.close()
        return code

    def text(self) -> str:
        """This run's log lines."""
        return self.log_path.read_text()[self.start:]


@pytest.fixture(scope="session")
def node_model(tmp_path_factory) -> Path:
    """The hand-set tumour model with its liver model (``series.model_folder``)."""
    return model_folder(tmp_path_factory.mktemp("node-model") / "model")


@pytest.fixture
def start_node():
    """``start_node(node_folder)`` -> a running ``NodeProcess``; every one is stopped at the end."""
    started: list[NodeProcess] = []

    def start(node: Path) -> NodeProcess:
        started.append(NodeProcess(node))
        return started[-1]

    yield start
    for process in started:
        process.stop(signal.SIGKILL)


@pytest.fixture
def storescp(tmp_path):
    """dcmtk's ``storescp`` as a destination: (AE title, port, folder it writes into)."""
    tool = need("storescp", "dcmtk")
    port, folder = free_port(), tmp_path / "received"
    folder.mkdir()
    proc = subprocess.Popen([tool, "-aet", "DEST", "-od", str(folder), "--promiscuous", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    yield "DEST", port, folder
    proc.kill()
    proc.wait()


def storescu(files, port: int, calling: str = "SCANNER", called: str = "HEPASEG",
             *options: str) -> subprocess.CompletedProcess:
    """dcmtk's ``storescu`` sending ``files`` to the node on localhost (in one association)."""
    tool = need("storescu", "dcmtk")
    return subprocess.run([tool, *options, "-aet", calling, "-aec", called, "127.0.0.1", str(port), *map(str, files)],
                          capture_output=True, text=True, timeout=120)


def store_statuses(files, port: int) -> list[int]:
    """The C-STORE status the node answered to each of ``files``, as storescu saw them (one association;
    ``--no-halt``: it goes on after a refusal; its debug log prints each C-STORE-RSP's status)."""
    done = storescu(files, port, "SCANNER", "HEPASEG", "--no-halt", "--log-level", "debug")
    return [int(code, 16) for code in re.findall(r"DIMSE Status\s*: 0x([0-9a-fA-F]{4})", done.stdout + done.stderr)]


class Orthanc:
    """A real Orthanc on free localhost ports, its storage in ``folder``; the node declared as modality
    ``hepaseg``; ``dicomweb``: with its DICOMweb plugin (Debian ``orthanc-dicomweb``) at ``dicomweb_url``.
    ``rest(method, path, body)`` calls its REST API; ``stop`` / ``start`` keep the storage."""

    def __init__(self, folder: Path, node_port: int, dicomweb: bool = False) -> None:
        self.binary = need("Orthanc", "orthanc")
        if dicomweb and not DICOMWEB_PLUGIN.exists():
            pytest.skip(f"{DICOMWEB_PLUGIN} not installed (Debian package orthanc-dicomweb; make test installs it "
                        "as root)")
        self.folder, self.http, self.dicom = folder, free_port(), free_port()
        folder.mkdir(parents=True, exist_ok=True)
        config = {"Name": "test", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
                  "HttpPort": self.http, "DicomPort": self.dicom, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
                  "AuthenticationEnabled": False, "DicomCheckCalledAet": False, "Plugins": [],
                  "DicomModalities": {"hepaseg": ["HEPASEG", "127.0.0.1", node_port]}}
        if dicomweb:
            config.update(Plugins=[str(DICOMWEB_PLUGIN)], DicomWeb={"Enable": True, "Root": "/dicom-web/"})
        self.dicomweb_url = f"http://127.0.0.1:{self.http}/dicom-web"  # with ``dicomweb``: STOW-RS at .../studies
        self.config = folder / "orthanc.json"
        self.config.write_text(json.dumps(config))
        self.proc = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(self._up, 30), "Orthanc did not start"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)

    def _up(self) -> bool:
        try:
            self.rest("GET", "/system")
            return True
        except OSError:
            return False

    def rest(self, method: str, path: str, body: bytes | dict | list | None = None):
        import urllib.request

        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        request = urllib.request.Request(f"http://127.0.0.1:{self.http}{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=60) as answer:
            raw = answer.read()
        return json.loads(raw) if raw[:1] in (b"{", b"[") else raw

    def upload(self, folder: Path) -> str:
        """POST every file of ``folder``; the Orthanc id of their series."""
        for f in sorted(folder.iterdir()):
            answer = self.rest("POST", "/instances", f.read_bytes())
        return answer["ParentSeries"]

    def modalities_in(self, study_uid: str) -> list[str]:
        """The Modality of every series in the study ``study_uid`` (sorted)."""
        found = self.rest("POST", "/tools/find", {"Level": "Series", "Query": {"StudyInstanceUID": study_uid},
                                                  "Expand": True})
        return sorted(s["MainDicomTags"].get("Modality", "") for s in found)


@pytest.fixture
def orthanc(tmp_path):
    """``orthanc(node_port, dicomweb=False)`` -> a running ``Orthanc``; stopped at the end."""
    started: list[Orthanc] = []

    def start(node_port: int, dicomweb: bool = False) -> Orthanc:
        started.append(Orthanc(tmp_path / "orthanc", node_port, dicomweb))
        return started[-1]

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.stop()
