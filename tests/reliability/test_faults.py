"""Faults during an index run, each followed by a plain re-run that must converge to a clean run.

The job runs through the real `favor index` command (in this process, Beam's local runner in
`in_memory` mode, so the one fault injected at a process edge reaches the transform that hits it):
- the store refuses the commit (root ignores chmod, so the Lance write itself raises PermissionError:
  on `windows`, the first write, and on `videos`, the last one after `windows` and `failures` landed);
- the disk fills up (ENOSPC) while a worker writes a shard: a partial hidden file, then the error;
- the model runs out of memory on one chunk (the batch retries at half size, then that chunk alone
  is dead-lettered).
After each, the re-run's tables equal a clean run's: counts, keys, and the vectors (see convergence.py).
A worker killed mid-bundle is tests/integration/test_index_job.py::test_a_killed_run_is_finished_by_the_next_run.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from favor_ops.store import commit as commit_module
from favor_ops.store.feature_store import FeatureStore
from tests.reliability.cases import clip, make_zero_bytes
from tests.reliability.convergence import assert_converged, read_tables

pytestmark = pytest.mark.slow

EXIT_OK, EXIT_SOME_FAILED, EXIT_JOB_FAILED = 0, 3, 4
LONG_CLIP = "b_long.mp4"  # 35 s: two 30 s chunks (windows_per_chunk 1 -> 6 windows per chunk)


@dataclass(frozen=True)
class CliRun:
    exit_code: int
    summary: dict
    stderr: str


def favor_index(archive: Path, db: Path) -> CliRun:
    from pipelines.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["index", str(archive), "--db", str(db), "--model", "tiny", "--running-mode", "in_memory",
                     "--windows-per-chunk", "1", "--batch-chunks", "4", "--json"])
    text = out.getvalue()
    return CliRun(code, json.loads(text) if text.strip() else {}, err.getvalue())


@pytest.fixture(scope="module")
def fault_archive(tmp_path_factory) -> Path:
    archive = tmp_path_factory.mktemp("fault_archive")
    clip(archive / "a.mp4", 4.0, tone_hz=500, tag="fault_a")
    clip(archive / LONG_CLIP, 35.0, tone_hz=510, tag="fault_b")
    clip(archive / "c_silent.mp4", 6.0, audio=False, tag="fault_c")
    make_zero_bytes(archive / "d_empty.mp4")
    return archive


@pytest.fixture(scope="module")
def clean(fault_archive, tmp_path_factory):
    db = tmp_path_factory.mktemp("fault_clean") / "db"
    run = favor_index(fault_archive, db)
    assert run.exit_code == EXIT_SOME_FAILED, run.stderr  # d_empty.mp4
    tables = read_tables(db)
    assert len(tables.videos) == 4 and len(tables.window_keys) == 1 + 7 + 2
    return tables


def _no_windows_committed(db: Path) -> bool:
    store = FeatureStore.open(str(db))
    return not store.has_table("windows") or store.counts()["windows"] == 0


# ---- the store refuses the commit -----------------------------------------------------------------


@pytest.mark.parametrize("refused_table", ["windows", "videos"])
def test_a_refused_commit_exits_4_and_the_rerun_converges(fault_archive, clean, tmp_path, monkeypatch, refused_table):
    db = tmp_path / "db"
    real_merge = commit_module._merge
    attempts = []

    def refusing_merge(store, name, batch, delete_where, write):
        if name == refused_table:
            attempts.append(name)
            raise PermissionError(errno.EACCES, "Permission denied", f"{store.uri}/{name}.lance")
        return real_merge(store, name, batch, delete_where, write)

    with monkeypatch.context() as patch:
        patch.setattr(commit_module, "_merge", refusing_merge)
        refused = favor_index(fault_archive, db)

    assert attempts == [refused_table]
    assert refused.exit_code == EXIT_JOB_FAILED
    assert refused.summary == {}  # no summary claims anything was indexed
    message = refused.stderr.strip().splitlines()[-1]
    assert message.startswith("favor index: job failed:") and "Permission denied" in message, refused.stderr
    assert f"{refused_table}.lance" in message
    store = FeatureStore.open(str(db))
    assert store.counts()["videos"] == 0  # nothing is listed: the next run redoes every file
    if refused_table == "windows":
        assert _no_windows_committed(db) and store.counts()["failures"] == 0

    rerun = favor_index(fault_archive, db)
    assert rerun.exit_code in (EXIT_OK, EXIT_SOME_FAILED), rerun.stderr
    assert_converged(read_tables(db), clean)


# ---- disk full while a worker writes a shard ------------------------------------------------------


def test_disk_full_during_a_shard_write_fails_the_run_and_the_rerun_converges(fault_archive, clean, tmp_path,
                                                                              monkeypatch):
    import pyarrow.ipc as ipc

    db = tmp_path / "db"
    real_new_file = ipc.new_file
    calls = []

    def full_disk_new_file(sink, schema, *args, **kwargs):
        calls.append(schema)
        if len(calls) == 1:  # once: a few bytes land in the hidden temporary file, then the disk is full
            sink.write(b"ARROW1\x00\x00")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_new_file(sink, schema, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(ipc, "new_file", full_disk_new_file)
        failed = favor_index(fault_archive, db)

    assert len(calls) >= 1
    assert failed.exit_code == EXIT_JOB_FAILED
    assert "No space left on device" in failed.stderr.strip().splitlines()[-1], failed.stderr
    store = FeatureStore.open(str(db))
    assert store.counts()["videos"] == 0 and store.counts()["failures"] == 0 and _no_windows_committed(db)

    rerun = favor_index(fault_archive, db)
    assert rerun.exit_code == EXIT_SOME_FAILED, rerun.stderr
    assert_converged(read_tables(db), clean)


# ---- out of memory on one chunk -------------------------------------------------------------------


def test_out_of_memory_on_one_chunk_fails_only_that_file_and_the_rerun_converges(fault_archive, clean, tmp_path,
                                                                                 monkeypatch):
    import torch

    from pipelines.index import chunk_encoder

    db = tmp_path / "db"
    real_encode = chunk_encoder.encode_media_chunk_batch
    batches = []  # (uris, chunk indices) of every batch the handler tried

    def encode_or_oom(model, chunks, *args, **kwargs):
        batches.append([(Path(c.uri).name, c.chunk_idx) for c in chunks])
        if any(Path(c.uri).name == LONG_CLIP and c.chunk_idx == 1 for c in chunks):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_encode(model, chunks, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(chunk_encoder, "encode_media_chunk_batch", encode_or_oom)
        oom = favor_index(fault_archive, db)

    poisoned = (LONG_CLIP, 1)
    tried = [batch for batch in batches if poisoned in batch]
    assert tried[-1] == [poisoned]  # retried down to the chunk alone before giving up on it
    assert all(len(b) < len(a) for a, b in zip(tried, tried[1:]) if len(a) > 1)  # each retry is smaller
    assert oom.exit_code == EXIT_SOME_FAILED, oom.stderr
    by_uri = {Path(f["uri"]).name: f for f in oom.summary["failures"]}
    assert set(by_uri) == {LONG_CLIP, "d_empty.mp4"}
    assert (by_uri[LONG_CLIP]["stage"], by_uri[LONG_CLIP]["error_type"]) == ("encode", "OutOfMemoryError")
    assert by_uri[LONG_CLIP]["message"].startswith("out of memory:")
    assert oom.summary["indexed"] == 2  # a.mp4 and c_silent.mp4; the other files are not held back
    store = FeatureStore.open(str(db))
    long_uri = str(fault_archive / LONG_CLIP)
    assert long_uri not in set(store.videos_df()["uri"])  # no videos row: the next run retries the file
    indexed_ids = set(store.videos_df()["video_id"])
    stored_ids = set(store.table("windows").search().select(["video_id"]).limit(None).to_pandas()["video_id"])
    assert stored_ids <= indexed_ids  # chunk 0 of the long clip was encoded, yet none of its windows is stored

    rerun = favor_index(fault_archive, db)
    assert rerun.exit_code == EXIT_OK, rerun.stderr  # the long clip indexes; the empty file is a known failure
    assert rerun.summary["indexed"] == 1
    oom_failure = (long_uri, _video_id(clean, long_uri), "encode", "OutOfMemoryError")
    assert_converged(read_tables(db), clean, extra_failure_keys=[oom_failure])


def _video_id(tables, uri: str) -> str:
    return next(row[0] for row in tables.videos if row[1] == uri)
