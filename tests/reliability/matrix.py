"""Run the bad-input matrix through the real index job once and read back what became of each case.

`run_matrix(workdir)` writes every case of cases.py into `workdir/archive`, runs
`pipelines.index.job.run_index_job` (Beam's local runner, 2 worker processes, the `tiny` model) into
`workdir/db` and returns one `Observed` per case, read from the store: the `videos` row, the
`failures` rows and the windows of the file's uri. A case with neither a row nor a failure is
"missing": the silent skip the matrix exists to catch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from favor_ops.store.catalog import printable_uri
from favor_ops.store.feature_store import FeatureStore
from pipelines.index.job import IndexJobConfig, IndexSummary, run_index_job
from tests.reliability.cases import CASES, MATRIX_WINDOWS_PER_CHUNK, Case, build_archive, restore_permissions

MATRIX_MODEL = "tiny"
MATRIX_WORKERS = 2


@dataclass(frozen=True)
class Observed:
    case: str
    uri: str  # as the store records it
    outcome: str  # "indexed" | "failed" (a failures row) | "missing" (neither: a silent skip)
    status: str | None = None  # videos.status, None without a videos row
    n_windows: int | None = None  # videos.n_windows
    windows_in_table: int = 0  # rows in `windows` for the file's video_id
    window_idx: tuple[int, ...] = ()
    duration_s: float | None = None
    has_video: bool | None = None
    has_audio: bool | None = None
    failures: tuple[tuple[str, str, str], ...] = ()  # (stage, error_type, message) of each failures row

    def describe(self) -> str:
        if self.outcome == "indexed":
            return f"indexed, {self.n_windows} window{'s' if self.n_windows != 1 else ''}"
        if self.outcome == "failed":
            stage, error_type, _ = self.failures[0]
            return f"failure [{stage}] {error_type}"
        return "missing (no row, no failure)"


@dataclass
class MatrixRun:
    archive: Path
    db: Path
    summary: IndexSummary
    wall_s: float
    observed: dict[str, Observed] = field(default_factory=dict)  # case name -> what the store says


def case_uri(case: Case, archive: Path) -> str:
    """The uri the store records for a case's file (a non-UTF-8 name shows its bytes as \\xNN)."""
    return printable_uri(os.fsdecode(case.path(archive)))


def observe(store: FeatureStore, archive: Path) -> dict[str, Observed]:
    videos = {row["uri"]: row for row in store.videos_df().to_dict("records")}
    failures: dict[str, list[tuple[str, str, str]]] = {}
    for row in store.failures_df().to_dict("records"):
        failures.setdefault(row["uri"], []).append((row["stage"], row["error_type"], row["message"]))
    observed = {}
    for case in CASES:
        uri = case_uri(case, archive)
        video = videos.get(uri)
        windows = store.windows_for_video(video["video_id"]) if video is not None else None
        fails = tuple(failures.get(uri, ()))
        if fails:
            outcome = "failed"
        elif video is not None and video["status"] == "indexed":
            outcome = "indexed"
        else:
            outcome = "missing"
        observed[case.name] = Observed(
            case=case.name, uri=uri, outcome=outcome,
            status=video["status"] if video is not None else None,
            n_windows=int(video["n_windows"]) if video is not None else None,
            windows_in_table=len(windows) if windows is not None else 0,
            window_idx=tuple(int(i) for i in windows["window_idx"]) if windows is not None else (),
            duration_s=float(video["duration_s"]) if video is not None and video["duration_s"] is not None else None,
            has_video=bool(video["has_video"]) if video is not None and video["has_video"] is not None else None,
            has_audio=bool(video["has_audio"]) if video is not None and video["has_audio"] is not None else None,
            failures=fails,
        )
    return observed


def run_matrix(workdir: Path) -> MatrixRun:
    """Build the archive, index it once, observe every case (see module docstring)."""
    archive, db = workdir / "archive", workdir / "db"
    try:
        build_archive(archive)
        started = time.perf_counter()
        summary = run_index_job(IndexJobConfig(
            source=str(archive), db=str(db), model=MATRIX_MODEL, num_workers=MATRIX_WORKERS,
            windows_per_chunk=MATRIX_WINDOWS_PER_CHUNK,
        ))
    finally:
        restore_permissions(archive)
    wall_s = time.perf_counter() - started
    run = MatrixRun(archive=archive, db=db, summary=summary, wall_s=wall_s)
    run.observed = observe(FeatureStore.open(str(db)), archive)
    return run
