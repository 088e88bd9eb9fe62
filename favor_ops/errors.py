"""Typed errors that carry the pipeline stage, the input and a human reason.

A failing input becomes a `failures` row from these fields (stage, error_type,
message), so every error raised for a bad input must be one of these, never a
bare exception with only a stack trace.
"""

from __future__ import annotations


class FavorError(Exception):
    """Base class of every error favor raises on purpose."""


class StageError(FavorError):
    """An input failed at a named pipeline stage.

    Attributes:
        stage: pipeline stage name ("catalog", "probe", "decode", "encode", "window", "store", ...).
        uri: the input it failed on.
        reason: one human-readable line saying why.
    """

    stage: str = "unknown"

    def __init__(self, uri: str, reason: str, *, stage: str | None = None):
        self.uri = str(uri)
        self.reason = str(reason).strip().splitlines()[0] if str(reason).strip() else "unknown reason"
        if stage is not None:
            self.stage = stage
        super().__init__(f"[{self.stage}] {self.uri}: {self.reason}")

    @property
    def error_type(self) -> str:
        return type(self).__name__

    def __reduce__(self):  # picklable across Beam worker processes
        return (_rebuild_stage_error, (type(self), self.uri, self.reason, self.stage))


def _rebuild_stage_error(cls, uri, reason, stage):
    return cls(uri, reason, stage=stage)


class MediaError(StageError):
    """Base for errors while reading media."""

    stage = "decode"


class ProbeError(MediaError):
    """ffprobe could not read the container or found no usable stream."""

    stage = "probe"


class DecodeError(MediaError):
    """ffmpeg failed while decoding frames or audio."""

    stage = "decode"


class UnsupportedMediaError(MediaError):
    """The file is readable but refused by configuration (size, duration, codec)."""

    stage = "probe"
