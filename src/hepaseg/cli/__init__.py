"""The ``hepaseg`` command: parse arguments, call one library function, print.

Each subcommand has an ``add_<name>`` function (in ``data_commands``, ``export_commands``,
``model_commands``, ``study_commands``, ``rating_commands``, ``node_commands``) that builds its
parser (with an example in the help text) and sets ``func`` to a small runner, which returns the
exit code (None: 0). Bad input raises ``InputError``; ``main`` turns it into one line on stderr and
exit code 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool

from ..errors import InputError, Stopped
from . import data_commands, export_commands, model_commands, node_commands, rating_commands, study_commands
from .common import EXIT_BAD_INPUT, EXIT_SYSTEM, formatter

_COMMANDS = (data_commands.add_synth, data_commands.add_manifest, data_commands.add_check,
             data_commands.add_preprocess, export_commands.add_export, model_commands.add_train,
             model_commands.add_train_liver, model_commands.add_liver,
             study_commands.add_evaluate, study_commands.add_report, model_commands.add_predict,
             model_commands.add_select, study_commands.add_study, rating_commands.add_rate,
             node_commands.add_node)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hepaseg",
        description="Liver tumour segmentation in late hepatobiliary-phase MRI.",
        epilog="example:\n  hepaseg synth data/mini --small --seed 1 && hepaseg check data/mini/dataset.json",
        formatter_class=formatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors become one line on stderr (``--debug``: with the traceback).

    Exit codes: 0 done; 1 some cases failed (batch prediction) or the system refused (an
    operating-system error: no space, permission, read-only file system); 2 bad input; 128 + N
    stopped by signal N (130 Ctrl-C, 143 SIGTERM) after saving what a resume needs.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        return _fail(args, f"error: {exc}", EXIT_BAD_INPUT)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(args, f"error: {where}{exc.strerror or exc}", EXIT_SYSTEM)
    except BrokenProcessPool:
        return _fail(args, "error: a worker process died (out of memory?); try fewer --workers", EXIT_SYSTEM)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        detail = f": {exc}" if str(exc) else ""
        return _fail(args, f"stopped by {signal.Signals(signum).name}{detail}", 128 + signum)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(signum: int, frame: object) -> None:
    """SIGTERM outside a training loop: stop like Ctrl-C (files being written are left as they were)."""
    raise Stopped(signum)


def _fail(args: argparse.Namespace, line: str, code: int) -> int:
    if args.debug:
        traceback.print_exc()
    print(line, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
