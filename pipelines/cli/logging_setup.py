"""Logging for the `favor` command line: warnings and errors on stderr, minus Beam's known noise.

Set up before Beam is imported: Beam logs a harmless warning at import time
(optional GCP client libraries) and a few more while building pipelines.
"""

from __future__ import annotations

import logging

# Beam log lines that say nothing to a favor user.
BEAM_NOISE = (
    "apitools not found",
    "requested in with_outputs() but not declared in type hints",
    "direct_running_mode should be",
)


class DropBeamNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in BEAM_NOISE)


def configure_logging(level: int = logging.WARNING) -> None:
    """Root handler on stderr at `level`, with the noise filter on it (idempotent)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        if not any(isinstance(f, DropBeamNoise) for f in handler.filters):
            handler.addFilter(DropBeamNoise())
