"""``hepaseg node init / run / status / retry``: hepaseg as a DICOM node (docs/node.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .common import subparser

INIT_EXAMPLE = "hepaseg node init node/ --model model/ --ae HEPASEG --port 11112 --send-to ORTHANC@pacs.local:4242"


def add_node(sub) -> None:
    p = subparser(sub, "node", "hepaseg as a DICOM node: receive series from a scanner or PACS, segment every "
                  "hepatobiliary-phase series, send the SEG, SR, RTSTRUCT and overview back. docs/node.md",
                  f"{INIT_EXAMPLE}\n  hepaseg node run node/\n  hepaseg node status node/")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    _add_init(verbs)
    r = subparser(verbs, "run", "Run the node in the foreground until SIGTERM or Ctrl-C (then exit 143 / 130; "
                  "unfinished jobs resume at the next start).", "hepaseg node run node/ --json-logs")
    r.add_argument("node", type=Path, help="the node folder")
    r.add_argument("--json-logs", action="store_true", help="one JSON object per log line")
    r.set_defaults(func=_run_run)
    s = subparser(verbs, "status", "Every series the node has seen: state, reason, times, what was sent.",
                  "hepaseg node status node/ --json")
    s.add_argument("node", type=Path, help="the node folder")
    s.add_argument("--json", action="store_true", help="a JSON list, one object per series")
    s.set_defaults(func=_run_status)
    t = subparser(verbs, "retry", "A failed or ignored series once more (an ignored one regardless of the rules); "
                  "a running node picks it up.", "hepaseg node retry node/ 1.2.826.0.1.3680043.8.498.1")
    t.add_argument("node", type=Path, help="the node folder")
    t.add_argument("series", metavar="SERIES_UID", help="its Series Instance UID (hepaseg node status)")
    t.set_defaults(func=_run_retry)


def _add_init(verbs) -> None:
    from ..io.dicom_results import OBJECTS

    i = subparser(verbs, "init", "Create a node folder: its configuration, spool and job database.", INIT_EXAMPLE)
    i.add_argument("node", type=Path, help="the new node folder")
    i.add_argument("--model", type=Path, required=True, help="the model folder (with its liver model, or the shipped one)")
    i.add_argument("--ae", required=True, help="the node's AE title (up to 16 characters)")
    i.add_argument("--port", type=int, required=True, help="the port it listens on (DICOM: often 104 or 11112)")
    i.add_argument("--send-to", required=True, metavar="DEST",
                   help="where results go: AET@HOST:PORT (C-STORE) or dicomweb:URL (STOW-RS)")
    i.add_argument("--host", default="127.0.0.1", help="the address it listens on (default 127.0.0.1: this "
                                                       "machine only; 0.0.0.0 for every interface)")
    i.add_argument("--allow", action="append", metavar="AET@HOST",
                   help="a sender allowed to connect (repeatable; *@HOST: any AE title; default: the --send-to host)")
    i.add_argument("--rules", type=Path, help="which series to segment, JSON (default: the hepatobiliary phase)")
    i.add_argument("--quiet-seconds", type=float, default=30.0,
                   help="a series is complete when no instance arrived for this long (default 30)")
    i.add_argument("--objects", default=",".join(OBJECTS), metavar="KINDS",
                   help=f"the DICOM objects to send, any of {','.join(OBJECTS)} (default: all)")
    i.add_argument("--keep-hours", type=float, default=24.0,
                   help="remove a finished series' received files this long after it finished (default 24)")
    i.set_defaults(func=_run_init)


def _run_init(args) -> None:
    from ..inference.dicom_outputs import parse_objects
    from ..node.config import init_node, new_config

    config = new_config(args.model, args.ae, args.port, args.send_to, args.allow, args.host, args.rules,
                        args.quiet_seconds, parse_objects(args.objects), args.keep_hours)
    path = init_node(args.node, config)
    allowed = ", ".join(f"{p.ae}@{p.host}" for p in config.allow)
    print(f"wrote {path}: {config.ae} on {config.host}:{config.port}, results to {config.send_to.describe()}, "
          f"senders allowed: {allowed}")
    if not config.local_only:
        print(f"warning: the node will listen on {config.host}, not only on this machine")


def _run_run(args) -> int:
    from ..node.service import run_node

    return run_node(args.node, args.json_logs, args.debug)


def _run_status(args) -> None:
    from ..node.config import read_node
    from ..node.store import open_store

    read_node(args.node)
    store = open_store(args.node)
    rows = store.rows()
    store.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("no series received yet")
    for row in rows:
        sent = ", ".join(json.loads(row["sent"])) if row["sent"] else ""
        print(f"{row['uid']}  {row['state']:<10}  {row['description'] or '(no description)'}  "
              f"{row['instances']} instances  received {_time(row['last_received'])}"
              + (f"  finished {_time(row['finished'])}" if row["finished"] else "")
              + (f"  sent {sent}" if sent else "") + (f"  reason: {row['reason']}" if row["reason"] else ""))


def _time(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "-"


def _run_retry(args) -> None:
    from ..node.config import read_node
    from ..node.store import open_store

    read_node(args.node)
    store = open_store(args.node)
    try:
        was = store.retry(args.series)
    finally:
        store.close()
    print(f"series {args.series} ({was}) will be processed once more by the running node")
