"""`favor`: the command line entry point.

Each subcommand lives in its own module exposing `register(subparsers)`; the
module adds a parser and sets `handler=<callable(args) -> int>`. Heavy imports
(torch, Beam, LanceDB) happen inside handlers so `favor --help` stays fast.

Exit status: 0 success; what a handler returns otherwise; 2 for bad input
(a one-line `favor: error: ...` message, never a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from favor_ops.errors import FavorError
from pipelines.cli.logging_setup import configure_logging

# Subcommand modules, in the order `favor --help` lists them.
COMMAND_MODULES = (
    "pipelines.cli.demo_command",
    "pipelines.cli.corpus_command",
    "pipelines.cli.index_command",
    "pipelines.cli.search_command",
    "pipelines.cli.ask_command",
    "pipelines.cli.serve_command",
    "pipelines.cli.train_command",
    "pipelines.cli.bench_command",
    "pipelines.cli.eval_command",
    "pipelines.cli.store_command",
)

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="favor",
        description=(
            "favor: index a video archive into searchable, question-answerable "
            "audio-visual memory (FAVOR: synchronised speech + frames, causal Q-Former)."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Only commands that hand options to another system (Beam) accept flags they do not declare.
        if not getattr(args, "accepts_passthrough", False) or any(not u.startswith("--") for u in unknown):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.passthrough = unknown
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(handler(args) or 0)
    except (FavorError, FileNotFoundError, ValueError) as err:
        print(f"favor: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("favor: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
