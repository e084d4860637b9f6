"""Fixtures of the node tests: the hand-set model folder, free ports, real node processes, a real
Orthanc (Debian ``orthanc``) and dcmtk's tools; tests needing a missing tool skip, saying which."""

from __future__ import annotations

import json
import os
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
        self.proc = subprocess.Popen([sys.executable, "-m", "hepaseg", "node", "run", str(node)], env=node_env(),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        assert wait_until(lambda: "listening" in self.log_path.read_text() or self.proc.poll() is not None, 60)
        assert self.proc.poll() is None, self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(30)
        self.log.close()
        return code

    def text(self) -> str:
        return self.log_path.read_text()


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


def storescu(files, port: int, calling: str = "SCANNER", called: str = "HEPASEG") -> subprocess.CompletedProcess:
    """dcmtk's ``storescu`` sending ``files`` to the node on localhost."""
    tool = need("storescu", "dcmtk")
    return subprocess.run([tool, "-aet", calling, "-aec", called, "127.0.0.1", str(port), *map(str, files)],
                          capture_output=True, text=True, timeout=120)
