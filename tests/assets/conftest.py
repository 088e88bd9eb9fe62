"""Fixtures for the Dagster orchestration tests.

`asset_corpus`: one synthetic corpus per session (6 clips <= 8 s + the 4 bad inputs), every file's
mtime set to ARRIVAL_TIME_S so it belongs to exactly one arrival-day partition (ARRIVAL_DAY).
`archive_copy()`: a private copy of it (mtimes kept) for a test that indexes. `dagster_env`: DAGSTER_HOME
and TMPDIR pointed at the test's temporary directories. Expectations come from the corpus manifest.
"""

import datetime as dt
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from favor_ops.corpus.manifest import read_manifest
from favor_ops.corpus.synth import synthesize_corpus

CORPUS_VIDEOS = 6
CORPUS_SEED = 5
CORPUS_MAX_DURATION_S = 8.0
TEST_MODEL = "tiny"

ARRIVAL_DAY = "2026-03-14"  # the partition every corpus file belongs to
ARRIVAL_TIME_S = dt.datetime(2026, 3, 14, 12, 30, tzinfo=dt.timezone.utc).timestamp()

MODEL_FPS = 2.0  # frames per second every preset samples
FRAMES_PER_WINDOW = 10  # W


def expected_n_windows(record: dict) -> int:
    """ceil(ceil(duration * fps) / W) windows for a clip, 1 for a still image."""
    if record["kind"] == "still_image":
        return 1
    n_frames = max(1, math.ceil(float(record["duration_s"]) * MODEL_FPS - 1e-6))
    return math.ceil(n_frames / FRAMES_PER_WINDOW)


@dataclass(frozen=True)
class AssetCorpus:
    archive: Path
    records: list[dict]

    def good(self) -> list[dict]:
        return [r for r in self.records if r["kind"] != "bad"]

    def bad(self) -> list[dict]:
        return [r for r in self.records if r["kind"] == "bad"]

    def expected_windows(self) -> int:
        return sum(expected_n_windows(r) for r in self.good())


def set_mtimes(directory: Path, mtime_s: float) -> None:
    for path in directory.iterdir():
        if path.is_file():
            os.utime(path, (mtime_s, mtime_s))


@pytest.fixture(scope="session")
def asset_corpus(tmp_path_factory) -> AssetCorpus:
    archive = tmp_path_factory.mktemp("asset_corpus") / "archive"
    synthesize_corpus(archive, CORPUS_VIDEOS, CORPUS_SEED, include_bad=True,
                      max_duration_s=CORPUS_MAX_DURATION_S, progress=False)
    (archive / "manifest.jsonl").rename(archive.parent / "manifest.jsonl")  # keep the archive media-only
    set_mtimes(archive, ARRIVAL_TIME_S)
    return AssetCorpus(archive=archive, records=read_manifest(archive.parent))


@pytest.fixture
def archive_copy(asset_corpus, tmp_path):
    """archive_copy() -> a private copy of the corpus archive (mtimes kept: copy2)."""

    def copy() -> Path:
        target = tmp_path / "archive"
        shutil.copytree(asset_corpus.archive, target, copy_function=shutil.copy2)
        return target

    return copy


@pytest.fixture
def dagster_env(tmp_path, monkeypatch):
    """DAGSTER_HOME and TMPDIR in the test's tmp dir (tempfile's cached dir reset too)."""
    home, tmp = tmp_path / "dagster_home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return home
