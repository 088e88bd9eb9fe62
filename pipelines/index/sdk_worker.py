"""Beam SDK worker process for the local runner (`python -m pipelines.index.sdk_worker`).

The stock worker logs its start-up at INFO on stderr, once per process and
run; here only errors reach the terminal (they also travel to the runner,
which reports them with the failing transform).

When the runner ends the control stream, the harness has finished every
bundle and torn its DoFns down (shards are closed, metrics sent); what is left
is the interpreter's own shut-down: unloading torch, transformers and gRPC,
about 1.5 s of CPU per process on this machine, and the runner stops its
workers one after the other. So the process leaves with `os._exit` once the
harness has returned and the standard streams are flushed. A harness that
fails raises as before and exits non-zero.
"""

from __future__ import annotations

import logging
import os
import sys


def main() -> None:
    logging.disable(logging.WARNING)  # before Beam's import, which warns about optional GCP libraries
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
