"""`favor serve --db DB [--host 127.0.0.1] [--port 8000]`: the search API and page (FastAPI + uvicorn).

Binds 127.0.0.1 unless told otherwise. A bearer token (--token, else the FAVOR_API_TOKEN environment
variable) protects every data endpoint; binding another address without a token prints a warning.
"""

from __future__ import annotations

import argparse
import os
import sys

TOKEN_ENV = "FAVOR_API_TOKEN"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the search API and page over HTTP",
        description="Serve GET/POST /search, /videos/{id} (metadata, clip, thumbnail), /healthz and the search page "
                    f"for the store at --db. Token: --token or ${TOKEN_ENV}.",
    )
    parser.add_argument("--db", required=True, help="LanceDB URI of the feature store")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--model", default=None, help="query encoder: aligned checkpoint dir or preset "
                                                      "(default: the demo checkpoint when it exists)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda for the query encoder")
    parser.add_argument("--token", default=None, help=f"bearer token required by the API (default: ${TOKEN_ENV})")
    parser.add_argument("--max-upload-mb", type=float, default=50.0, help="largest query file accepted (MiB)")
    parser.set_defaults(handler=run_serve)


def build_config(args: argparse.Namespace):
    from pipelines.serve.app import MIB, ServeConfig

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be 1-65535, got {args.port}")
    if not args.max_upload_mb > 0:
        raise ValueError("--max-upload-mb must be positive")
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    return ServeConfig(db=args.db, model=args.model, device=args.device, token=token,
                       max_upload_bytes=int(args.max_upload_mb * MIB))  # fmt: skip


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from pipelines.cli.search_command import open_store
    from pipelines.serve.app import create_app

    config = build_config(args)
    store = open_store(args.db)  # a missing store is a one-line error now, not on the first request
    if args.host not in LOOPBACK_HOSTS and not config.token:
        print(f"favor serve: warning: binding {args.host} without a token; set --token or ${TOKEN_ENV}", file=sys.stderr)
    app = create_app(config, store=store)
    print(f"favor serve: http://{args.host}:{args.port}/  (store {args.db})", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m pipelines.cli.serve_command --db DB ...`: the same as `favor serve`, usable before it is wired."""
    from favor_ops.errors import FavorError

    parser = argparse.ArgumentParser(prog="favor")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.handler(args) or 0)
    except (FavorError, FileNotFoundError, ValueError) as err:
        print(f"favor: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
