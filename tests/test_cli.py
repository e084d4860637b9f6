"""The ``hepaseg`` command as a whole: every subcommand's help shows an example. (Each command's runs
are tested beside the module it calls, e.g. ``hepaseg predict`` in tests/inference/test_batch.py.)"""

from __future__ import annotations

from hepaseg.cli import build_parser


def _subcommands(parser, prefix: str = "hepaseg"):
    """(full command name, parser) of every subcommand, nested ones (``hepaseg rate init``) too."""
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, subparser in action.choices.items():
                yield f"{prefix} {name}", subparser
                yield from _subcommands(subparser, f"{prefix} {name}")


def test_cli_help_shows_examples(capsys):
    commands = dict(_subcommands(build_parser()))
    assert "hepaseg rate init" in commands and "hepaseg study" in commands
    for name, subparser in commands.items():
        assert "example:" in subparser.format_help(), name
        assert name in subparser.format_help(), name
