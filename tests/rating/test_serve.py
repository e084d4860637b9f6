"""``hepaseg rate serve``: loopback by default, a warning elsewhere, the Host names, the sign-in links,
and the command itself started on 127.0.0.1 (stopped by the test, or by its timeout)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx

from hepaseg.rating.serve import allowed_hosts, bind_warning, is_loopback, sign_in_links

START_TIMEOUT_S = 30
LIFETIME_S = 90  # coreutils' timeout stops the server by itself, should the test not


def test_loopback_and_the_warning():
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.1.2.3", "rating.example", "::"))
    assert bind_warning("127.0.0.1") is None
    assert "reachable from the network" in bind_warning("0.0.0.0")
    assert allowed_hosts("0.0.0.0", ["rating.example"]) == ["127.0.0.1", "localhost", "rating.example"]
    assert allowed_hosts("10.1.2.3") == ["127.0.0.1", "localhost", "10.1.2.3"]


def test_links_carry_the_token_in_the_fragment_until_tokens_txt_is_deleted(rating):
    init = rating(("R3", "R4"))
    links = sign_in_links(init.folder, "127.0.0.1", 8123)
    assert links == {r: f"http://127.0.0.1:8123/signin#token={init.tokens[r]}" for r in ("R3", "R4")}
    (init.folder / "tokens.txt").unlink()
    assert sign_in_links(init.folder, "127.0.0.1", 8123) == {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_command_prints_links_and_serves_on_localhost(rating):
    init = rating(("R3",))
    port = _free_port()
    command = ["timeout", str(LIFETIME_S), sys.executable, "-m", "hepaseg", "rate", "serve", str(init.folder),
               "--port", str(port)]
    process = subprocess.Popen(command,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    err = ""
    try:
        line = process.stdout.readline()
        assert line.strip() == f"R3: http://127.0.0.1:{port}/signin#token={init.tokens['R3']}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/api/signin", json={"token": init.tokens["R3"]})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and process.poll() is None, "the server did not start"
                time.sleep(0.1)
        assert answer.status_code == 200 and "server" not in answer.headers
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert "warning" not in err
