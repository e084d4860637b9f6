"""A node folder's configuration, ``NODE/node.json``, and the folder's layout.

``NODE/`` holds ``node.json`` (this module), ``spool/<series UID>/<SOP instance UID>.dcm`` (the
received instances), ``results/<series UID>/`` (what the worker wrote), ``jobs.db`` (``node.store``)
and, while ``hepaseg node run`` works, its lock (``io.lock``). Destinations are ``AET@HOST:PORT``
(DIMSE C-STORE) or ``dicomweb:URL`` (STOW-RS); allowed peers are ``AET@HOST`` (``*`` for any AE title).
"""

from __future__ import annotations

import dataclasses
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from ..errors import InputError
from ..io.atomic import write_json
from ..io.dicom_results import OBJECTS
from .rules import DEFAULT_RULES, check_rules, read_rules

CONFIG_FILE, SPOOL, RESULTS, DATABASE = "node.json", "spool", "results", "jobs.db"
LOCAL_HOST = "127.0.0.1"
AE_TITLE_MAX = 16  # characters (DICOM PS3.5, VR AE)


@dataclass(frozen=True)
class Destination:
    """Where results go: a DICOM node (``ae``, ``host``, ``port``) or a DICOMweb service (``url``)."""

    ae: str = ""
    host: str = ""
    port: int = 0
    url: str = ""

    @property
    def dicomweb(self) -> bool:
        return bool(self.url)

    def describe(self) -> str:
        return f"dicomweb:{self.url}" if self.dicomweb else f"{self.ae}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Peer:
    """A sender allowed to open associations: its calling AE title (``*``: any) and host."""

    ae: str
    host: str


@dataclass(frozen=True)
class NodeConfig:
    """What ``hepaseg node init`` recorded (times in seconds, sizes in MB = 10^6 bytes).

    Attributes:
        model: the model folder (absolute path).
        quiet_seconds: a series is complete when no instance of it arrived for this long.
        keep_hours: a finished series' spool files are removed this long after it finished.
        backoff_seconds: first and longest wait between two tries to send (doubling in between).
    """

    model: str
    ae: str
    port: int
    send_to: Destination
    allow: tuple[Peer, ...]
    host: str = LOCAL_HOST
    quiet_seconds: float = 30.0
    objects: tuple[str, ...] = OBJECTS
    rules: dict = field(default_factory=lambda: DEFAULT_RULES)
    keep_hours: float = 24.0
    backoff_seconds: tuple[float, float] = (5.0, 300.0)
    max_instances_per_association: int = 10000
    max_instance_mb: float = 512.0
    min_free_mb: float = 1000.0

    @property
    def local_only(self) -> bool:
        """Whether the node listens on this machine only (a wider ``host`` earns a warning)."""
        return self.host in (LOCAL_HOST, "localhost")


def check_ae(text: str, what: str) -> str:
    """``text`` as an AE title; InputError naming ``what`` unless 1-16 printable characters, no backslash."""
    ae = text.strip()
    if not ae or len(ae) > AE_TITLE_MAX or "\\" in ae or not ae.isprintable():
        raise InputError(what, f"{text!r} is not an AE title (1 to {AE_TITLE_MAX} characters, no backslash)")
    return ae


def parse_destination(text: str) -> Destination:
    """``AET@HOST:PORT`` or ``dicomweb:URL`` (http or https); InputError otherwise."""
    if text.startswith("dicomweb:"):
        url = text[len("dicomweb:"):]
        if urlparse(url).scheme not in ("http", "https") or not urlparse(url).hostname:
            raise InputError("--send-to", f"{text!r}: expected dicomweb:http(s)://HOST[:PORT]/PATH")
        return Destination(url=url.rstrip("/"))
    ae, at, address = text.partition("@")
    host, colon, port = address.rpartition(":")
    if not at or not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError("--send-to", f"{text!r}: expected AET@HOST:PORT or dicomweb:URL")
    return Destination(check_ae(ae, "--send-to"), host, int(port))


def parse_peer(text: str) -> Peer:
    """``AET@HOST`` (``*@HOST``: any AE title from HOST); InputError otherwise."""
    ae, at, host = text.partition("@")
    if not at or not host:
        raise InputError("--allow", f"{text!r}: expected AET@HOST")
    return Peer(ae if ae == "*" else check_ae(ae, "--allow"), host)


def destination_host(destination: Destination) -> str:
    """The host name of a destination (the default allowed sender)."""
    return urlparse(destination.url).hostname or "" if destination.dicomweb else destination.host


def resolve(host: str) -> str:
    """``host``'s IPv4 address, or ``host`` itself where it does not resolve."""
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def is_allowed(peers: tuple[Peer, ...], calling_ae: str, address: str) -> bool:
    """Whether a sender with ``calling_ae`` from the IP ``address`` may associate (one peer matching both)."""
    return any(p.ae in ("*", calling_ae.strip()) and resolve(p.host) == address for p in peers)


def new_config(model: str | Path, ae: str, port: int, send_to: str, allow: list[str] | None = None,
               host: str = LOCAL_HOST, rules: str | Path | None = None, quiet_seconds: float = 30.0,
               objects: tuple[str, ...] = OBJECTS, keep_hours: float = 24.0) -> NodeConfig:
    """A node's configuration from ``hepaseg node init``'s options, each checked.

    Raises:
        InputError: a model folder without a liver model (and none shipped), a bad AE title, port,
            destination, peer, rules file or number.
    """
    from ..model.folder import liver_model_dir, read_model_info, shipped_liver_dir

    read_model_info(model)
    if not liver_model_dir(model).is_dir() and shipped_liver_dir() is None:
        raise InputError(model, "has no liver model and this installation ships none; the node segments "
                                "without liver masks (embed one with 'hepaseg train --liver-model')")
    if not 0 < port < 65536:
        raise InputError("--port", f"{port} is not a port (1 to 65535)")
    if quiet_seconds < 0 or keep_hours < 0:
        raise InputError("--quiet-seconds" if quiet_seconds < 0 else "--keep-hours", "must not be negative")
    destination = parse_destination(send_to)
    peers = tuple(parse_peer(p) for p in allow) if allow else (Peer("*", destination_host(destination)),)
    return NodeConfig(str(Path(model).resolve()), check_ae(ae, "--ae"), port, destination, peers, host,
                      quiet_seconds, tuple(objects), DEFAULT_RULES if rules is None else read_rules(rules), keep_hours)


def init_node(folder: str | Path, config: NodeConfig) -> Path:
    """Create the node folder with its ``node.json``; InputError where one exists already."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if path.exists():
        raise InputError(path, "the node exists already (edit node.json, or choose another folder)")
    for sub in (SPOOL, RESULTS):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    write_json(path, dataclasses.asdict(config))
    return path


def read_node(folder: str | Path) -> NodeConfig:
    """The configuration in ``NODE/node.json``; InputError where it is missing or malformed."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise InputError(folder, f"not a hepaseg node (no {CONFIG_FILE}; create one with 'hepaseg node init')")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["send_to"] = Destination(**raw["send_to"])
        raw["allow"] = tuple(Peer(**p) for p in raw["allow"])
        for key in ("objects", "backoff_seconds"):  # JSON lists; where absent, NodeConfig's defaults
            if key in raw:
                raw[key] = tuple(raw[key])
        config = NodeConfig(**raw)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(path, f"not a valid node configuration ({type(exc).__name__}: {exc})") from exc
    check_rules(config.rules, path)
    return config

