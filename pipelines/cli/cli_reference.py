"""docs/cli.md: every `favor` command's --help text, rendered from the parser itself.

    python -m pipelines.cli.cli_reference > docs/cli.md      (or `make docs`)

tests/pipelines/test_cli_reference.py fails when docs/cli.md and the parser disagree.
"""

from __future__ import annotations

import argparse
import os


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps sub-commands in a private action list
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _walk(parser: argparse.ArgumentParser, path: list[str]):
    yield path, parser
    for name, sub in _subparsers(parser).items():
        yield from _walk(sub, path + [name])


def render_cli_reference() -> str:
    from pipelines.cli.main import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps at $COLUMNS: fixed, so the file is stable
    try:
        parts = ["# `favor` command reference", "",
                 "Generated from the command line's own parser by `python -m pipelines.cli.cli_reference` "
                 "(`make docs`); a test fails when this file and `favor --help` disagree.", ""]
        for path, parser in _walk(build_parser(), ["favor"]):
            parts += [f"## `{' '.join(path)}`", "", "```", parser.format_help().rstrip(), "```", ""]
        return "\n".join(parts)
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


if __name__ == "__main__":
    print(render_cli_reference(), end="")
