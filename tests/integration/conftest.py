"""Session fixtures for the index-job integration tests.

`index_corpus` synthesizes one corpus (20 clips <= 12 s + the 4 bad inputs) per test session;
`indexed_db` indexes it once through the real CLI (`favor index`, Beam's FnApiRunner in
multi-process mode with 2 workers, the `tiny` model) into a LanceDB directory. Tests that write
copy the archive and/or the store first (`copy_store`); none mutates the shared ones.

Expectations come from the corpus manifest, never from the code under test:
`expected_windows(record)` is the window grid a file must get (fps = 2, W = 10 frames).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from favor_ops.corpus.manifest import read_manifest
from favor_ops.corpus.synth import synthesize_corpus

INDEX_CORPUS_VIDEOS = 20  # >= 20 good clips, plus the 4 bad inputs
INDEX_CORPUS_SEED = 7
INDEX_CORPUS_MAX_DURATION_S = 12.0
INDEX_MODEL = "tiny"
INDEX_WORKERS = 2  # SDK worker processes of the local runner

MODEL_FPS = 2.0  # frames per second the tiny (and every) preset samples
FRAMES_PER_WINDOW = 10  # W
WINDOW_S = FRAMES_PER_WINDOW / MODEL_FPS  # 5.0 s per window

# ProbeError / DecodeError in the manifest -> `failures.stage` the job must record.
STAGE_OF_EXPECTED_ERROR = {"ProbeError": "probe", "DecodeError": "decode"}


@dataclass(frozen=True)
class ExpectedWindows:
    n_windows: int
    t_start_s: list[float]  # (n_windows,)
    t_end_s: list[float]  # (n_windows,)


def expected_windows_of(record: dict) -> ExpectedWindows:
    """The window grid of a good manifest record: ceil(duration * fps / W) windows of WINDOW_S seconds,
    the last one clipped at the duration; a still image has exactly one window, spanning one frame
    slice [0, 1 / fps) when its declared duration is 0."""
    duration_s = float(record["duration_s"])
    if record["kind"] == "still_image":
        n_windows = 1
        duration_s = duration_s or 1.0 / MODEL_FPS
    else:  # video, no_audio and audio_only (its audio duration) alike
        n_frames = max(1, math.ceil(duration_s * MODEL_FPS - 1e-6))
        n_windows = math.ceil(n_frames / FRAMES_PER_WINDOW)
    starts = [k * WINDOW_S for k in range(n_windows)]
    ends = [min((k + 1) * WINDOW_S, duration_s) for k in range(n_windows)]
    return ExpectedWindows(n_windows, starts, ends)


@pytest.fixture(scope="session")
def expected_windows():
    return expected_windows_of


@dataclass(frozen=True)
class IndexCorpus:
    archive: Path  # the folder that gets indexed (manifest.jsonl is not media: the catalog ignores it)
    records: list[dict]

    def by_file(self) -> dict[str, dict]:
        return {r["file"]: r for r in self.records}

    def good(self) -> list[dict]:
        return [r for r in self.records if r["kind"] != "bad"]

    def bad(self) -> list[dict]:
        return [r for r in self.records if r["kind"] == "bad"]


@pytest.fixture(scope="session")
def index_corpus(tmp_path_factory) -> IndexCorpus:
    archive = tmp_path_factory.mktemp("index_corpus") / "archive"
    synthesize_corpus(archive, INDEX_CORPUS_VIDEOS, INDEX_CORPUS_SEED, include_bad=True,
                      max_duration_s=INDEX_CORPUS_MAX_DURATION_S, progress=False)
    return IndexCorpus(archive=archive, records=read_manifest(archive))


@dataclass(frozen=True)
class CliRun:
    exit_code: int
    summary: dict  # `favor index --json` output


def run_index_cli(source, db, *extra: str) -> CliRun:
    """`favor index SOURCE --db DB --model tiny --workers 2 --json` in this process (Beam's
    workers are subprocesses); returns the exit status and the JSON summary."""
    from pipelines.cli.main import main

    argv = ["index", str(source), "--db", str(db), "--model", INDEX_MODEL,
            "--workers", str(INDEX_WORKERS), "--json", *extra]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    text = out.getvalue()
    return CliRun(exit_code=code, summary=json.loads(text) if text.strip() else {})


@pytest.fixture(scope="session")
def cli_index():
    return run_index_cli


@dataclass(frozen=True)
class IndexedDb:
    corpus: IndexCorpus
    db: Path
    run: CliRun
    model_load_pids: list[str]  # one line per model load during the run (FAVOR_MODEL_LOAD_LOG)


@pytest.fixture(scope="session")
def indexed_db(index_corpus, tmp_path_factory) -> IndexedDb:
    """The corpus indexed once (clean, from an empty store); read-only for the tests."""
    from pipelines.index.model_handler import MODEL_LOAD_LOG_ENV

    root = tmp_path_factory.mktemp("indexed_db")
    db, load_log = root / "db", root / "model_loads.log"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MODEL_LOAD_LOG_ENV, str(load_log))  # inherited by Beam's worker processes
        run = run_index_cli(index_corpus.archive, db)
    pids = load_log.read_text().split() if load_log.exists() else []
    return IndexedDb(corpus=index_corpus, db=db, run=run, model_load_pids=pids)


@pytest.fixture
def copy_store(tmp_path):
    """copy_store(db) -> a private copy of a LanceDB directory for a test that writes."""

    def copy(db: Path) -> Path:
        target = tmp_path / f"db_copy_{len(list(tmp_path.glob('db_copy_*')))}"
        shutil.copytree(db, target)
        return target

    return copy


def window_arrays(store, video_id: str) -> dict:
    """Windows of one video as exact numpy arrays: keys, spans and every vector column."""
    import numpy as np

    frame = store.windows_for_video(video_id)
    return {
        "window_idx": frame["window_idx"].to_numpy(),
        "t_start": frame["t_start"].to_numpy(),
        "t_end": frame["t_end"].to_numpy(),
        "tokens": np.stack([np.stack(t) for t in frame["tokens"]]) if len(frame) else np.zeros(0),  # (W, Q, D)
        "pooled": np.stack(frame["pooled"].to_list()) if len(frame) else np.zeros(0),  # (W, D)
        "audio_vec": np.stack(frame["audio_vec"].to_list()) if len(frame) else np.zeros(0),  # (W, D)
        "visual_vec": np.stack(frame["visual_vec"].to_list()) if len(frame) else np.zeros(0),  # (W, D)
    }


@pytest.fixture(scope="session")
def read_windows():
    return window_arrays


def pythonpath_env(**extra: str) -> dict:
    """Environment for a `favor` subprocess that imports this checkout."""
    repo = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@pytest.fixture(scope="session")
def subprocess_env():
    return pythonpath_env
