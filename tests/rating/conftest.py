"""Fixtures of the rating tests: a live server (the study and rating folders are in tests/conftest.py)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER_LIFETIME_S = 120  # a test server stops by itself after this long ...
SERVER_MAX_REQUESTS = 5000  # ... or after this many requests


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
