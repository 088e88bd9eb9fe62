"""docs/cli.md is the parser's own help: regenerate it with `make docs` when a command changes."""

from pathlib import Path

from pipelines.cli.cli_reference import render_cli_reference

ROOT = Path(__file__).resolve().parents[2]


def test_cli_doc_matches_the_help_of_every_command():
    rendered = render_cli_reference()
    for command in ("demo", "corpus", "index", "search", "ask", "serve", "train", "eval", "bench", "store"):
        assert f"## `favor {command}`" in rendered, command
    assert (ROOT / "docs" / "cli.md").read_text() == rendered, "docs/cli.md is stale: run `make docs`"


def test_every_option_has_help_text():
    import argparse

    from pipelines.cli.cli_reference import _walk
    from pipelines.cli.main import build_parser

    missing = []
    for path, parser in _walk(build_parser(), ["favor"]):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not action.help:
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing
