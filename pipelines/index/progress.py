"""Progress of a running index job, visible from the driver whatever the runner.

Workers leave tiny marker files next to the run's shards
(`<db>/_staging/<run_id>/_progress/`): one when the catalog has planned the
run (holding the number of files to index) and one per file once it is
decoded (or has failed). The driver polls them and draws a progress bar; the
commit removes them with the rest of the run's staging area.
"""

from __future__ import annotations

import threading

import fsspec

from favor_ops.store.shards import STAGING_DIR

PLANNED_MARKER = "_planned"


def progress_dir(db_uri: str, run_id: str) -> str:
    return f"{db_uri.rstrip('/')}/{STAGING_DIR}/{run_id}/_progress"


def _write(uri: str, text: str) -> None:
    fs, path = fsspec.core.url_to_fs(uri)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(path, "w") as handle:
        handle.write(text)


def mark_planned(db_uri: str, run_id: str, n_files: int) -> None:
    _write(f"{progress_dir(db_uri, run_id)}/{PLANNED_MARKER}", str(int(n_files)))


def mark_done(db_uri: str, run_id: str, video_id: str) -> None:
    _write(f"{progress_dir(db_uri, run_id)}/{video_id}", "")


def read_progress(db_uri: str, run_id: str) -> tuple[int | None, int]:
    """(files planned or None before planning, files done)."""
    fs, path = fsspec.core.url_to_fs(progress_dir(db_uri, run_id))
    try:
        names = [p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)]
    except FileNotFoundError:
        return None, 0
    planned = None
    if PLANNED_MARKER in names:
        with fs.open(f"{path}/{PLANNED_MARKER}", "r") as handle:
            text = handle.read().strip()
        planned = int(text) if text.isdigit() else None
    return planned, sum(1 for n in names if n != PLANNED_MARKER and not n.startswith("."))


class ProgressMonitor:
    """Polls a run's markers in a thread and draws a tqdm bar on stderr (use as a context manager)."""

    def __init__(self, db_uri: str, run_id: str, interval_s: float = 0.5, enabled: bool = True):
        self.db_uri, self.run_id, self.interval_s, self.enabled = db_uri, run_id, interval_s, enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        from tqdm import tqdm

        bar = None
        while True:
            stopping = self._stop.wait(self.interval_s)
            try:
                planned, done = read_progress(self.db_uri, self.run_id)
            except OSError:
                planned, done = None, 0
            if planned is not None:
                if bar is None:
                    bar = tqdm(total=planned, desc="index", unit="file", leave=True)
                bar.n = min(done, planned)
                bar.refresh()
            if stopping:
                break
        if bar is not None:
            bar.close()

    def __enter__(self) -> "ProgressMonitor":
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="favor-index-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
