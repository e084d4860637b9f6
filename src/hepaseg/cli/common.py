"""What every subcommand's parser shares: the help layout with an example, and common options."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError

EXIT_BAD_INPUT = 2
EXIT_SYSTEM = 1  # an operating-system error (no space, permission, read-only file system)


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def subparser(sub, name: str, help_text: str, example: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"example:\n  {example}",
        formatter_class=formatter,
    )


def preset_option(p: argparse.ArgumentParser, resumed: str | None = None, config_file: bool = False) -> None:
    """``--preset`` (and ``--config FILE``); resolved by ``config.resolve_config``."""
    default = f"default paper; with --resume: {resumed}" if resumed else "default paper"
    p.add_argument("--preset", default=None, help=f"configuration preset: paper or demo, or their ablation variants "
                                                  f"paper-2d, paper-3d, demo-2d, demo-3d ({default})")
    if config_file:
        p.add_argument("--config", type=Path, default=None, help="a config.json to use instead of a preset")


def manifest_argument(p: argparse.ArgumentParser, role: str = "") -> None:
    """The positional ``manifest`` (``dataset.json``); ``role`` says what the command takes from it."""
    p.add_argument("manifest", type=Path, help=f"dataset.json{role}")


def workers_option(p: argparse.ArgumentParser, help: str = "parallel processes (default: all cores)") -> None:
    p.add_argument("--workers", type=int, default=None, help=help)


def name_dir(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {text!r}")
    return name, Path(folder)


def name_label(text: str) -> tuple[str, int]:
    """``NAME=L`` of ``--label`` -> (name, label value).

    Raises:
        InputError: not of that form (one line, exit 2, like every other bad ``--label``).
    """
    name, sep, value = text.partition("=")
    if not sep or not name or not value.strip().isdigit():
        raise InputError("--label", f"expected NAME=L with an integer label L, got {text!r}")
    return name, int(value)
