"""The index job end to end: the real Beam runner (FnApiRunner, multi_processing, 2 workers),
the `tiny` model and LanceDB in temporary directories.

Every expectation comes from the corpus manifest (durations, kinds, sha256, expected errors):
- a good file -> one `videos` row, status indexed, video_id = sha256[:16], ceil(duration * 2 / 10)
  windows at [5k, min(5(k+1), duration)); a bad file -> one `failures` row at the stage its
  expected error implies, and the CLI exits 3;
- re-running on the unchanged archive writes nothing (every table version unchanged) and exits 0:
  known failures are skipped by the catalog, not recorded again;
- a changed file replaces exactly its own rows;
- a run killed mid-way (SIGKILL) and re-run ends equal to one clean run;
- the model loads once per worker process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from favor_ops.store.feature_store import FeatureStore
from tests.integration.conftest import INDEX_WORKERS, STAGE_OF_EXPECTED_ERROR

VIDEO_ID_HEX = 16  # catalog default: video_id = first 16 hex chars of the content sha256
DURATION_TOL_S = 0.05  # probed container duration vs the manifest's (a fraction of one source frame)
EXIT_SOME_FAILED = 3
EXIT_OK = 0


def _uri(corpus, record) -> str:
    return str(corpus.archive / record["file"])


def _videos_by_uri(store) -> dict:
    frame = store.videos_df()
    assert frame["uri"].is_unique, frame["uri"][frame["uri"].duplicated()].tolist()
    return {row["uri"]: row for row in frame.to_dict("records")}


# ---- 1. first run ---------------------------------------------------------------------------


def test_first_run_exits_3_with_a_summary_that_adds_up(indexed_db, expected_windows):
    corpus, summary = indexed_db.corpus, indexed_db.run.summary
    assert indexed_db.run.exit_code == EXIT_SOME_FAILED
    assert summary["exit_code"] == EXIT_SOME_FAILED
    assert summary["listed"] == len(corpus.records) == 24
    assert summary["indexed"] == len(corpus.good()) == 20
    assert summary["failed"] == len(corpus.bad()) == 4
    assert summary["skipped"] == 0
    assert summary["wrote_anything"] is True
    assert summary["windows_written"] == sum(expected_windows(r).n_windows for r in corpus.good())
    assert summary["model_version"].startswith("tiny-")


def test_every_good_file_has_one_indexed_videos_row(indexed_db, expected_windows):
    corpus = indexed_db.corpus
    store = FeatureStore.open(str(indexed_db.db))
    videos = _videos_by_uri(store)
    assert set(videos) == {_uri(corpus, r) for r in corpus.records}  # bad files too (status failed)
    for record in corpus.good():
        row = videos[_uri(corpus, record)]
        assert row["status"] == "indexed", record["file"]
        assert row["video_id"] == record["sha256"][:VIDEO_ID_HEX], record["file"]
        assert row["n_windows"] == expected_windows(record).n_windows, record["file"]
        assert row["duration_s"] == pytest.approx(record["duration_s"], abs=DURATION_TOL_S), record["file"]
        assert row["fps"] == 2.0
        assert bool(row["has_video"]) == record["has_video"], record["file"]
        assert bool(row["has_audio"]) == record["has_audio"], record["file"]
        assert row["model_version"] == indexed_db.run.summary["model_version"]
        assert row["run_id"] == indexed_db.run.summary["run_id"]


def test_windows_follow_the_manifest_grid(indexed_db, expected_windows, read_windows):
    corpus = indexed_db.corpus
    store = FeatureStore.open(str(indexed_db.db))
    expected_total = sum(expected_windows(r).n_windows for r in corpus.good())
    assert store.counts()["windows"] == expected_total  # no duplicates, no strays of the bad files
    for record in corpus.good():
        expect = expected_windows(record)
        video_id = record["sha256"][:VIDEO_ID_HEX]
        got = read_windows(store, video_id)
        name = record["file"]
        np.testing.assert_array_equal(got["window_idx"], np.arange(expect.n_windows), err_msg=name)
        np.testing.assert_array_equal(got["t_start"], expect.t_start_s, err_msg=name)  # k * 5.0 exactly
        np.testing.assert_array_equal(got["t_end"][:-1], expect.t_end_s[:-1], err_msg=name)  # inner ends
        assert got["t_end"][-1] == pytest.approx(expect.t_end_s[-1], abs=DURATION_TOL_S), name
        assert got["tokens"].shape == (expect.n_windows, 32, 32), name  # (W, Q, D) of the tiny preset
        np.testing.assert_allclose(np.linalg.norm(got["pooled"], axis=1), 1.0, atol=1e-5, err_msg=name)
        audio_norm = np.linalg.norm(got["audio_vec"], axis=1)  # (W,)
        visual_norm = np.linalg.norm(got["visual_vec"], axis=1)  # (W,)
        if record["has_audio"]:
            np.testing.assert_allclose(audio_norm, 1.0, atol=1e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(audio_norm, 0.0, err_msg=name)
        if record["has_video"]:
            np.testing.assert_allclose(visual_norm, 1.0, atol=1e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(visual_norm, 0.0, err_msg=name)


def test_each_bad_file_is_one_failure_at_the_stage_of_its_expected_error(indexed_db):
    corpus = indexed_db.corpus
    store = FeatureStore.open(str(indexed_db.db))
    failures = store.failures_df()
    assert sorted(failures["uri"]) == sorted(_uri(corpus, r) for r in corpus.bad())  # one row per bad file
    by_uri = {row["uri"]: row for row in failures.to_dict("records")}
    videos = _videos_by_uri(store)
    for record in corpus.bad():
        expected_error = record["broken"]["expected_error"]
        row = by_uri[_uri(corpus, record)]
        assert row["stage"] == STAGE_OF_EXPECTED_ERROR[expected_error], record["file"]
        assert row["error_type"] == expected_error, record["file"]
        assert row["video_id"] == record["sha256"][:VIDEO_ID_HEX], record["file"]
        assert row["run_id"] == indexed_db.run.summary["run_id"]
        assert row["message"], record["file"]  # a one-line reason
        video = videos[_uri(corpus, record)]
        assert (video["status"], video["n_windows"]) == ("failed", 0), record["file"]
        assert len(store.windows_for_video(video["video_id"])) == 0, record["file"]
    summary_failures = {(f["uri"], f["stage"], f["error_type"]) for f in indexed_db.run.summary["failures"]}
    assert summary_failures == {(r["uri"], r["stage"], r["error_type"]) for r in failures.to_dict("records")}


# ---- 6. model loading -----------------------------------------------------------------------


def test_the_model_loads_once_per_worker_process(indexed_db):
    pids = indexed_db.model_load_pids
    assert len(pids) == INDEX_WORKERS, pids  # both worker processes ran the encoder, each loaded once
    assert len(set(pids)) == len(pids), f"a worker loaded the model more than once: {pids}"
    assert str(os.getpid()) not in pids  # the driver never loads weights
    assert indexed_db.run.summary["metrics"]["load_model_latency_milli_secs.count"] == len(pids)


# ---- 2. re-run on the unchanged archive -----------------------------------------------------


def test_rerun_on_the_unchanged_archive_writes_nothing_and_exits_0(indexed_db, copy_store, cli_index):
    db = copy_store(indexed_db.db)
    before = FeatureStore.open(str(db))
    versions, counts = before.table_versions(), before.counts()
    failures_before = before.failures_df()

    run = cli_index(indexed_db.corpus.archive, db)

    # Known failures are skipped by the catalog (status "failed" with this model version), so
    # nothing failed in *this* run: exit 0, and no failure is recorded twice.
    assert run.exit_code == EXIT_OK
    summary = run.summary
    assert (summary["listed"], summary["skipped"], summary["to_index"]) == (24, 24, 0)
    assert (summary["indexed"], summary["failed"], summary["windows_written"]) == (0, 0, 0)
    assert summary["wrote_anything"] is False
    after = FeatureStore.open(str(db))
    assert after.table_versions() == versions
    assert after.counts() == counts
    assert after.failures_df()[["uri", "run_id", "stage"]].equals(failures_before[["uri", "run_id", "stage"]])


# ---- 3. a changed file ----------------------------------------------------------------------

SMALL_ARCHIVE_FILES = ("v003.mp4", "v004.mp4", "v008.wav", "v010.webm", "v013.webm", "bad_zero_bytes.mp4")
CHANGED_FILE = "v004.mp4"  # gets the bytes of REPLACEMENT_FILE (another clip, not in the small archive)
REPLACEMENT_FILE = "v000.mp4"


def test_a_changed_file_replaces_only_its_own_rows(index_corpus, tmp_path, cli_index, expected_windows,
                                                   read_windows):
    manifest = index_corpus.by_file()
    assert manifest[CHANGED_FILE]["sha256"] != manifest[REPLACEMENT_FILE]["sha256"]
    archive, db = tmp_path / "archive", tmp_path / "db"
    archive.mkdir()
    for name in SMALL_ARCHIVE_FILES:
        shutil.copy2(index_corpus.archive / name, archive / name)
    first = cli_index(archive, db)
    assert first.exit_code == EXIT_SOME_FAILED  # bad_zero_bytes.mp4
    store = FeatureStore.open(str(db))
    old_id = manifest[CHANGED_FILE]["sha256"][:VIDEO_ID_HEX]
    new_id = manifest[REPLACEMENT_FILE]["sha256"][:VIDEO_ID_HEX]
    unchanged = [n for n in SMALL_ARCHIVE_FILES if n != CHANGED_FILE and manifest[n]["kind"] != "bad"]
    before = {n: read_windows(store, manifest[n]["sha256"][:VIDEO_ID_HEX]) for n in unchanged}
    videos_before = _videos_by_uri(store)
    failures_version = store.table_version("failures")
    assert len(read_windows(store, old_id)["window_idx"]) == expected_windows(manifest[CHANGED_FILE]).n_windows

    shutil.copyfile(index_corpus.archive / REPLACEMENT_FILE, archive / CHANGED_FILE)
    second = cli_index(archive, db)

    assert second.exit_code == EXIT_OK  # the known-bad file is skipped, the changed one indexes
    assert (second.summary["indexed"], second.summary["skipped"]) == (1, len(SMALL_ARCHIVE_FILES) - 1)
    store = FeatureStore.open(str(db))
    videos = _videos_by_uri(store)
    assert set(videos) == set(videos_before)  # same uris, one row each
    changed = videos[str(archive / CHANGED_FILE)]
    assert (changed["video_id"], changed["status"]) == (new_id, "indexed")
    assert changed["n_windows"] == expected_windows(manifest[REPLACEMENT_FILE]).n_windows
    assert changed["duration_s"] == pytest.approx(manifest[REPLACEMENT_FILE]["duration_s"], abs=DURATION_TOL_S)
    assert old_id not in set(store.videos_df()["video_id"])
    assert len(store.windows_for_video(old_id)) == 0
    new_windows = read_windows(store, new_id)
    np.testing.assert_array_equal(new_windows["window_idx"],
                                  np.arange(expected_windows(manifest[REPLACEMENT_FILE]).n_windows))
    for name in unchanged:
        uri = str(archive / name)
        assert videos[uri]["run_id"] == videos_before[uri]["run_id"], name  # its row was not rewritten
        after = read_windows(store, manifest[name]["sha256"][:VIDEO_ID_HEX])
        for column, values in before[name].items():
            np.testing.assert_array_equal(after[column], values, err_msg=f"{name}.{column}")
    expected_total = sum(expected_windows(manifest[n]).n_windows for n in unchanged) + len(new_windows["window_idx"])
    assert store.counts()["windows"] == expected_total
    assert store.table_version("failures") == failures_version  # the bad file's failure is not re-recorded


# ---- 4. kill mid-run, then finish -----------------------------------------------------------

KILL_WAIT_FOR_SHARDS_S = 240.0
KILL_POLL_S = 0.1


def _staged_shards(db: Path) -> list[Path]:
    staging = db / "_staging"
    return [p for p in staging.rglob("*") if p.is_file()] if staging.exists() else []


def _process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.mark.slow
def test_a_killed_run_is_finished_by_the_next_run(indexed_db, tmp_path, cli_index, subprocess_env, read_windows):
    archive, db = indexed_db.corpus.archive, tmp_path / "db"
    command = [sys.executable, "-m", "pipelines.cli.main", "index", str(archive), "--db", str(db),
               "--model", "tiny", "--workers", str(INDEX_WORKERS)]
    log = (tmp_path / "killed.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=subprocess_env(),
                               start_new_session=True)
    try:
        deadline = time.monotonic() + KILL_WAIT_FOR_SHARDS_S
        while not _staged_shards(db) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(KILL_POLL_S)
        assert process.poll() is None, "the job finished before any shard was seen; nothing was killed"
        assert _staged_shards(db), f"no shard staged under {db}/_staging in {KILL_WAIT_FOR_SHARDS_S} s"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the driver and its Beam worker processes
        process.wait(timeout=60)
        log.close()
    deadline = time.monotonic() + 30
    while _process_group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _process_group_alive(process.pid)
    assert process.returncode == -signal.SIGKILL

    killed = FeatureStore.open(str(db))  # the previous (empty) version is readable, nothing committed
    assert killed.counts()["videos"] == 0 and killed.counts()["failures"] == 0

    run = cli_index(archive, db)
    assert run.exit_code == EXIT_SOME_FAILED

    clean, resumed = FeatureStore.open(str(indexed_db.db)), FeatureStore.open(str(db))
    clean_videos, resumed_videos = clean.videos_df(), resumed.videos_df()
    columns = ["video_id", "uri", "status", "n_windows", "has_audio", "has_video", "duration_s"]
    assert resumed_videos["video_id"].is_unique
    assert resumed_videos[columns].equals(clean_videos[columns])
    clean_failures = clean.failures_df()[["uri", "video_id", "stage", "error_type"]]
    assert resumed.failures_df()[["uri", "video_id", "stage", "error_type"]].equals(clean_failures)
    assert resumed.counts()["windows"] == clean.counts()["windows"]
    for video_id in clean_videos["video_id"]:
        a, b = read_windows(clean, video_id), read_windows(resumed, video_id)
        np.testing.assert_array_equal(b["window_idx"], a["window_idx"], err_msg=video_id)
        assert len(np.unique(b["window_idx"])) == len(b["window_idx"]), video_id
        for column in ("t_start", "t_end"):
            np.testing.assert_array_equal(b[column], a[column], err_msg=f"{video_id}.{column}")
        for column in ("tokens", "pooled", "audio_vec", "visual_vec"):
            np.testing.assert_allclose(b[column], a[column], atol=1e-5, err_msg=f"{video_id}.{column}")


# ---- a file changed into a copy of content indexed elsewhere --------------------------------


def test_a_file_changed_into_a_copy_of_another_loses_its_old_rows(index_corpus, tmp_path, cli_index):
    """The catalog skips the new content (indexed already under another uri), and stages a removal of the old
    content's rows: nothing else holds it."""
    manifest = index_corpus.by_file()
    archive, db = tmp_path / "archive", tmp_path / "db"
    archive.mkdir()
    for name in ("v003.mp4", "v008.wav"):
        shutil.copy2(index_corpus.archive / name, archive / name)
    assert cli_index(archive, db).exit_code == EXIT_OK
    old_id = manifest["v003.mp4"]["sha256"][:VIDEO_ID_HEX]
    assert len(FeatureStore.open(str(db)).windows_for_video(old_id)) == 1

    shutil.copyfile(index_corpus.archive / "v008.wav", archive / "v003.mp4")  # v003.mp4 now holds v008's bytes
    assert cli_index(archive, db).exit_code == EXIT_OK

    store = FeatureStore.open(str(db))
    assert old_id not in set(store.videos_df()["video_id"])  # that content is gone from the archive
    assert len(store.windows_for_video(old_id)) == 0


# ---- 6. cold-started workers ------------------------------------------------------------------


def assert_same_windows(store, reference, names, manifest, read_windows) -> None:
    """Every named file has windows in `store`, bit for bit those of `reference`."""
    for name in names:
        video_id = manifest[name]["sha256"][:VIDEO_ID_HEX]
        rows, expected = read_windows(store, video_id), read_windows(reference, video_id)
        assert len(rows["window_idx"]) > 0
        for column, values in expected.items():
            np.testing.assert_array_equal(rows[column], values, err_msg=f"{name}: {column}")


def test_cold_started_workers_store_exactly_what_forked_workers_store(indexed_db, tmp_path, cli_index, read_windows):
    """`--cold-workers` starts each worker with `python -m pipelines.index.sdk_worker` instead of forking it from
    the warm server: the same rows, bit for bit, and the same failures."""
    manifest = indexed_db.corpus.by_file()
    archive, db = tmp_path / "archive", tmp_path / "db"
    archive.mkdir()
    for name in SMALL_ARCHIVE_FILES:
        shutil.copy2(indexed_db.corpus.archive / name, archive / name)
    cold = cli_index(archive, db, "--cold-workers")
    assert cold.exit_code == EXIT_SOME_FAILED and cold.summary["failed"] == 1  # bad_zero_bytes.mp4
    assert cold.summary["worker_start"] == "cold"
    assert set(cold.summary["phase_s"]) == {"catalog", "pipeline", "commit", "maintenance"}
    cold_store, warm_store = FeatureStore.open(str(db)), FeatureStore.open(str(indexed_db.db))
    good = [n for n in SMALL_ARCHIVE_FILES if manifest[n]["kind"] != "bad"]
    assert cold.summary["indexed"] == len(good)
    assert_same_windows(cold_store, warm_store, good, manifest, read_windows)


def test_decode_hwaccel_that_cannot_run_falls_back_to_cpu_decode_and_stores_the_same_windows(
        indexed_db, tmp_path, cli_index, read_windows):
    """`--decode-hwaccel cuda` on a machine whose ffmpeg cannot use it (no GPU here): the workers decode on the
    CPU and store what a CPU-decode run stores, bit for bit. On a GPU machine NVDEC decodes instead."""
    if shutil.which("nvidia-smi"):
        pytest.skip("a GPU is present: NVDEC would decode, not the fallback")
    manifest = indexed_db.corpus.by_file()
    archive, db = tmp_path / "archive", tmp_path / "db"
    archive.mkdir()
    good = [n for n in SMALL_ARCHIVE_FILES if manifest[n]["kind"] != "bad"]
    for name in good:
        shutil.copy2(indexed_db.corpus.archive / name, archive / name)
    run = cli_index(archive, db, "--decode-hwaccel", "cuda")
    assert run.exit_code == 0 and run.summary["indexed"] == len(good)
    store, reference = FeatureStore.open(str(db)), FeatureStore.open(str(indexed_db.db))
    assert_same_windows(store, reference, good, manifest, read_windows)


TWO_JOBS_SCRIPT = """
import json, sys
from pipelines.index.job import IndexJobConfig, run_index_job
archive, db = sys.argv[1], sys.argv[2]
for _ in range(2):  # the second job reuses the warm server forked before the first job started gRPC
    summary = run_index_job(IndexJobConfig(source=archive, db=db, model="tiny", num_workers=2))
    print(json.dumps({"worker_start": summary.worker_start, "indexed": summary.indexed, "skipped": summary.skipped}))
"""


def test_two_jobs_in_one_process_both_run_on_forked_workers(indexed_db, tmp_path, subprocess_env):
    """The second job of a process must not fork a new server from a driver whose gRPC has run (its workers would
    hang); it reuses the first job's server. A fresh process, so the first job is the first to start gRPC."""
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in ("v003.mp4", "v008.wav"):
        shutil.copy2(indexed_db.corpus.archive / name, archive / name)
    done = subprocess.run([sys.executable, "-c", TWO_JOBS_SCRIPT, str(archive), str(tmp_path / "db")],
                          capture_output=True, text=True, timeout=300, env=subprocess_env())
    assert done.returncode == 0, done.stderr[-2000:]
    runs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert runs == [{"worker_start": "forked", "indexed": 2, "skipped": 0},
                    {"worker_start": "forked", "indexed": 0, "skipped": 2}]
