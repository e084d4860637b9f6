"""The ``hepaseg`` command: parse arguments, call one library function, print.

Each subcommand has an ``_add_<name>`` function that builds its parser (with an example in the
help text) and sets ``func`` to a small runner. Bad input raises ``InputError``; ``main`` turns it
into one line on stderr and exit code 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from .errors import InputError

EXIT_BAD_INPUT = 2


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _subparser(sub, name: str, help_text: str, example: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"example:\n  {example}",
        formatter_class=_formatter,
    )


# --- synth -------------------------------------------------------------------------------------


def _add_synth(sub) -> None:
    p = _subparser(sub, "synth", "Write a synthetic hepatobiliary-phase MRI cohort with simulated raters.",
                   "hepaseg synth data/cohort --seed 0\n  hepaseg synth data/mini --small --seed 1")
    p.add_argument("out", type=Path, help="output folder (gets dataset.json and one folder per case)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default 0)")
    p.add_argument("--small", action="store_true", help="a handful of small cases, made in seconds")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.set_defaults(func=_run_synth)


def _run_synth(args) -> int:
    from .synth import write_cohort

    manifest = write_cohort(args.out, seed=args.seed, small=args.small, workers=args.workers)
    print(f"wrote {manifest}")
    return 0


# --- check -------------------------------------------------------------------------------------


def _add_check(sub) -> None:
    p = _subparser(sub, "check", "Validate a dataset manifest and every file it names; exit 0 or 2.",
                   "hepaseg check data/cohort/dataset.json")
    p.add_argument("manifest", type=Path, help="dataset.json")
    p.set_defaults(func=_run_check)


def _run_check(args) -> int:
    from .dataset import check_dataset

    report = check_dataset(args.manifest)
    for problem in report.problems:
        print(problem.format(), file=sys.stderr if problem.severity == "error" else sys.stdout)
    print(report.summary())
    return EXIT_BAD_INPUT if report.errors else 0


# --- preprocess --------------------------------------------------------------------------------


def _add_preprocess(sub) -> None:
    p = _subparser(sub, "preprocess", "Resample in-plane to 1 mm, normalise by liver percentiles, cache.",
                   "hepaseg preprocess data/cohort/dataset.json -o data/prep")
    p.add_argument("manifest", type=Path, help="dataset.json")
    p.add_argument("-o", "--out", type=Path, required=True, help="cache folder")
    p.add_argument("--preset", default="paper", help="configuration preset: paper or demo (default paper)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.set_defaults(func=_run_preprocess)


def _run_preprocess(args) -> int:
    from .config import preset
    from .preprocess import preprocess_dataset

    summary = preprocess_dataset(args.manifest, args.out, preset(args.preset).preprocess, workers=args.workers)
    print(f"{summary.done} cases prepared, {summary.skipped} unchanged, cache in {args.out}")
    return 0


# --- main --------------------------------------------------------------------------------------

_COMMANDS = (_add_synth, _add_check, _add_preprocess)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hepaseg",
        description="Liver tumour segmentation in late hepatobiliary-phase MRI.",
        epilog="example:\n  hepaseg synth data/mini --small --seed 1 && hepaseg check data/mini/dataset.json",
        formatter_class=_formatter,
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
