"""What an index run is asked to do: `IndexJobConfig` (the driver's input; workers never see it)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from favor_ops.store.catalog import check_time_window
from pipelines.index.runner_options import LOCAL_RUNNER


@dataclass
class IndexJobConfig:
    source: str  # archive URI (local dir, file://, s3://, gs://, memory://)
    db: str  # LanceDB URI
    model: str = "demo"  # checkpoint dir or preset name
    runner: str = LOCAL_RUNNER
    beam_args: Sequence[str] = ()
    num_workers: int | None = None  # local runner: SDK worker processes (default: one per core)
    running_mode: str = "multi_processing"  # local runner: multi_processing | multi_threading | in_memory
    windows_per_chunk: int = 12  # windows per decoded element (bounds memory per element)
    max_batch_chunks: int = 4  # chunks per RunInference batch
    device: str = "auto"
    run_id: str | None = None
    maintain: bool = True  # refresh indexes and compact after a commit that wrote something
    show_progress: bool = False  # draw a progress bar on stderr while the pipeline runs
    # Speech recognition for `windows.transcript` (favor_ops.asr.ASR_CHOICES, e.g. "whisper-tiny-en"); None: no
    # transcripts (empty strings). Part of the stored model_version: changing it re-indexes.
    asr: str | None = None
    # Only files with start_s <= mtime < end_s (seconds since the epoch, -inf / +inf for an open side);
    # None: every file. Applied when the archive is listed: other files are not hashed, planned or counted.
    modified_between_s: tuple[float, float] | None = None
    # Local multi-process runs: fork the SDK workers from a process that has imported their modules once
    # (pipelines.index.worker_fork_server) instead of starting each cold. Off, or where fork is not supported
    # (not Linux): cold `python -m pipelines.index.sdk_worker` processes.
    fork_workers: bool = True
    # ffmpeg -hwaccel method for video decode on the workers ("cuda": NVDEC); a worker whose ffmpeg cannot use it
    # decodes on the CPU instead (favor_ops.media.decode). None: CPU decode. Not part of the model version.
    decode_hwaccel: str | None = None

    def __post_init__(self):
        self.modified_between_s = check_time_window(self.modified_between_s)
        if self.decode_hwaccel is not None and not re.fullmatch(r"[a-z0-9_]+", self.decode_hwaccel):
            raise ValueError(f"decode_hwaccel must be an ffmpeg -hwaccel method such as cuda, got {self.decode_hwaccel!r}")
