"""``hepaseg rate serve``: the rating app under uvicorn, with one sign-in link per rater.

Binds 127.0.0.1 by default. Bound to any other address the app is reachable from the network, so a
warning says so (docs/rating.md: put it behind a TLS reverse proxy in a hospital network). The
sign-in links carry the token in the URL fragment (``#token=...``), which browsers never send to
the server, so it appears in no access log.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .app import create_app
from .prepare import open_store, read_tokens


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_warning(host: str) -> str | None:
    """The warning for an address other than loopback (None for loopback)."""
    if is_loopback(host):
        return None
    return (f"warning: serving on {host}, reachable from the network: anyone who can reach it sees the "
            "sign-in page. Use it only inside a trusted network, behind a TLS reverse proxy (docs/rating.md).")


def allowed_hosts(host: str, extra: Sequence[str] = ()) -> list[str]:
    """The Host names the app answers to: loopback names, the bound address (unless a wildcard) and ``extra``."""
    names = ["127.0.0.1", "localhost", *extra]
    if host not in ("0.0.0.0", "::"):
        names.append(host)
    return names


def sign_in_links(folder: Path, host: str, port: int) -> dict[str, str]:
    """Rater -> sign-in link, for the raters whose token is still in ``tokens.txt``."""
    shown = f"[{host}]" if ":" in host else host
    return {rater: f"http://{shown}:{port}/signin#token={token}" for rater, token in read_tokens(folder).items()}


def serve(folder: str | Path, host: str = "127.0.0.1", port: int = 8000, extra_hosts: Sequence[str] = (),
          log: Callable[[str], None] = print) -> None:
    """Serve the rating folder until interrupted (see the module docstring).

    Raises:
        InputError: not a rating folder.
    """
    import uvicorn

    folder = Path(folder)
    store = open_store(folder)
    warning = bind_warning(host)
    if warning:
        print(warning, file=sys.stderr)
    links = sign_in_links(folder, host, port)
    for rater in store.raters():
        log(f"{rater}: {links.get(rater, f'http://{host}:{port}/signin (token as handed out by rate init)')}")
    app = create_app(folder, allowed_hosts(host, extra_hosts))
    uvicorn.run(app, host=host, port=port, server_header=False, log_level="info")
