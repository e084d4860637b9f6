"""The ``hepaseg`` command: parse arguments, call one library function, print.

Each subcommand has an ``add_<name>`` function (in ``data_commands``, ``model_commands``,
``study_commands``, ``rating_commands``) that builds its parser (with an example in the help text) and sets ``func`` to
a small runner, which returns the exit code (None: 0). Bad input raises ``InputError``; ``main``
turns it into one line on stderr and exit code 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from ..errors import InputError
from . import data_commands, model_commands, rating_commands, study_commands
from .common import EXIT_BAD_INPUT, formatter

_COMMANDS = (data_commands.add_synth, data_commands.add_manifest, data_commands.add_check,
             data_commands.add_preprocess, model_commands.add_train, study_commands.add_evaluate,
             study_commands.add_report, model_commands.add_predict, model_commands.add_select,
             study_commands.add_study, rating_commands.add_rate)


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
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
