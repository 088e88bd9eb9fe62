"""Beam SDK worker process for the local runner (`python -m pipelines.index.sdk_worker`).

The stock worker logs its start-up at INFO on stderr, once per process and
run; here only errors reach the terminal (they also travel to the runner,
which reports them with the failing transform).
"""

from __future__ import annotations

import logging
import sys


def main() -> None:
    logging.disable(logging.WARNING)  # before Beam's import, which warns about optional GCP libraries
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv)


if __name__ == "__main__":
    main()
