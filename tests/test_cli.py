"""The ``hepaseg`` command as a whole: every subcommand's help shows an example. (Each command's runs
are tested beside the module it calls, e.g. ``hepaseg predict`` in tests/inference/test_batch.py.)"""

from __future__ import annotations

from hepaseg.cli import build_parser


def test_cli_help_shows_examples(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, subparser in sub.choices.items():
        assert "example:" in subparser.format_help(), name
        assert f"hepaseg {name}" in subparser.format_help(), name
