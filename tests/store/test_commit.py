import datetime as dt
import os

import numpy as np
import pyarrow as pa
import pytest

from favor_ops.errors import DecodeError
from favor_ops.store import shards
from favor_ops.store.commit import CommitConfig, commit_run, dedupe_last
from favor_ops.store.feature_store import FeatureStore
from favor_ops.store.schema import FAILURES, VIDEOS, WINDOWS, failure_row

D, Q = 8, 4
AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
NO_OPT = CommitConfig(optimize_after=False)


def video_row(vid, uri, n_windows, run_id, *, status="indexed", model_version="m1"):
    return {"video_id": vid, "uri": uri, "duration_s": 5.0 * n_windows, "fps": 2.0, "has_audio": True,
            "has_video": True, "n_windows": n_windows, "model_version": model_version, "indexed_at": AT,
            "status": status, "run_id": run_id}


def window_rows(vid, n_windows, *, seed=0, fill=None, model_version="m1"):
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(n_windows):
        tokens = rng.normal(size=(Q, D)).astype(np.float32) if fill is None else np.full((Q, D), fill, np.float32)
        rows.append({"video_id": vid, "window_idx": w, "t_start": 5.0 * w, "t_end": 5.0 * (w + 1),
                     "tokens": tokens.tolist(), "pooled": tokens.mean(0).tolist(), "audio_vec": tokens[0].tolist(),
                     "visual_vec": tokens[1].tolist(), "has_audio": True, "has_video": True,
                     "transcript": f"{vid} window {w}", "model_version": model_version})
    return rows


def stage(store, run_id, table, rows):
    return shards.write_shard(store.uri, run_id, table, pa.Table.from_pylist(rows, schema=store.schema(table)))


@pytest.fixture
def store(tmp_path):
    s = FeatureStore.open(str(tmp_path / "db"), dim=D, n_query_tokens=Q)
    s.ensure_tables()
    return s


def test_dedupe_last_keeps_last_row_per_key():
    t = pa.table({"k": ["a", "b", "a", "c", "b"], "v": [1, 2, 3, 4, 5]})
    out = dedupe_last(t, ["k"])
    assert out.column("k").to_pylist() == ["a", "c", "b"]
    assert out.column("v").to_pylist() == [3, 4, 5]


def test_dedupe_without_repeats_returns_the_table_itself():
    """The common commit (every key once) copies no vectors."""
    t = pa.table({"k": ["a", "b", "c"], "v": [1, 2, 3]})
    out = dedupe_last(t, ["k"])
    assert out.equals(t)
    assert out.column("v").chunks[0].buffers()[1].address == t.column("v").chunks[0].buffers()[1].address


def test_two_workers_one_commit_one_version_per_table(store):
    before = store.table_versions()
    assert before == {"videos": 1, "windows": 1, "failures": 1, "answers": 1}
    # worker 1 and worker 2 each stage their own videos
    stage(store, "run1", VIDEOS, [video_row("v1", "/a/one.mp4", 2, "run1")])
    stage(store, "run1", WINDOWS, window_rows("v1", 2, seed=1))
    stage(store, "run1", VIDEOS, [video_row("v2", "/a/two.mp4", 3, "run1")])
    stage(store, "run1", WINDOWS, window_rows("v2", 3, seed=2))
    assert len(shards.list_shards(store.uri, "run1", WINDOWS)) == 2
    assert store.counts()["windows"] == 0  # staged rows are invisible until the commit

    result = commit_run(store, "run1", NO_OPT)
    after = store.table_versions()
    assert after == {"videos": 2, "windows": 2, "failures": 1, "answers": 1}
    assert result.tables[WINDOWS].rows_written == 5 and result.tables[VIDEOS].rows_written == 2
    assert store.counts() == {"videos": 2, "windows": 5, "failures": 0, "answers": 0}
    assert store.videos_df()["video_id"].tolist() == ["v1", "v2"]
    w = store.windows_for_video("v2")
    assert w["window_idx"].tolist() == [0, 1, 2]
    assert w["t_start"].tolist() == [0.0, 5.0, 10.0]
    np.testing.assert_allclose(np.stack(w.loc[1, "tokens"]), np.array(window_rows("v2", 3, seed=2)[1]["tokens"]))
    # the staging dir is gone after the commit
    assert shards.list_staged_runs(store.uri) == []


def test_duplicate_keys_across_shards_last_writer_wins(store):
    # a retried bundle: v1 staged twice (older attempt with 3 windows, newer with 2), plus a row dup
    stage(store, "r", WINDOWS, window_rows("v1", 3, fill=1.0))
    stage(store, "r", VIDEOS, [video_row("v1", "/a/one.mp4", 3, "r")])
    stage(store, "r", WINDOWS, window_rows("v1", 2, fill=2.0) + window_rows("v1", 1, fill=3.0))
    stage(store, "r", VIDEOS, [video_row("v1", "/a/one.mp4", 2, "r")])
    result = commit_run(store, "r", NO_OPT)
    assert result.tables[WINDOWS].rows_staged == 6
    assert result.tables[WINDOWS].rows_after_dedupe == 2
    w = store.windows_for_video("v1")
    assert w["window_idx"].tolist() == [0, 1]  # only windows below the listed count, none left from the older
    assert [row[0][0] for row in w["tokens"]] == [3.0, 2.0]  # inside a shard the later row wins
    assert store.videos_df()["n_windows"].tolist() == [2]


def test_recommit_of_unchanged_run_writes_nothing(store):
    stage(store, "r1", VIDEOS, [video_row("v1", "/a/one.mp4", 2, "r1")])
    stage(store, "r1", WINDOWS, window_rows("v1", 2))
    commit_run(store, "r1")  # with compaction
    versions = store.table_versions()

    again = commit_run(store, "r1")  # nothing staged any more
    assert not again.wrote_anything
    assert store.table_versions() == versions

    # the same rows staged again by a new run (e.g. a forced re-run): skipped as unchanged
    stage(store, "r2", VIDEOS, [video_row("v1", "/a/one.mp4", 2, "r1")])
    stage(store, "r2", WINDOWS, window_rows("v1", 2))
    repeat = commit_run(store, "r2")
    assert repeat.skipped_video_ids == ["v1"]
    assert not repeat.wrote_anything
    assert store.table_versions() == versions
    assert shards.list_staged_runs(store.uri) == []


def test_changed_file_replaces_its_rows(store):
    stage(store, "r1", VIDEOS, [video_row("old", "/a/clip.mp4", 3, "r1"), video_row("keep", "/a/other.mp4", 1, "r1")])
    stage(store, "r1", WINDOWS, window_rows("old", 3) + window_rows("keep", 1))
    commit_run(store, "r1", NO_OPT)
    versions = store.table_versions()

    # /a/clip.mp4 was edited: new content hash, 2 windows
    stage(store, "r2", VIDEOS, [video_row("new", "/a/clip.mp4", 2, "r2")])
    stage(store, "r2", WINDOWS, window_rows("new", 2, seed=5))
    result = commit_run(store, "r2", NO_OPT)
    assert result.replaced_video_ids == ["old"]
    assert store.table_versions()[VIDEOS] == versions[VIDEOS] + 1
    assert store.table_versions()[WINDOWS] == versions[WINDOWS] + 1
    videos = store.videos_df()
    assert videos[["video_id", "uri"]].values.tolist() == [["new", "/a/clip.mp4"], ["keep", "/a/other.mp4"]]
    assert len(store.windows_for_video("old")) == 0
    assert store.windows_for_video("new")["window_idx"].tolist() == [0, 1]
    assert len(store.windows_for_video("keep")) == 1
    assert result.tables[WINDOWS].rows_deleted == 3 and result.tables[VIDEOS].rows_deleted == 1


def test_reindex_with_new_model_version_drops_stale_windows(store):
    stage(store, "r1", VIDEOS, [video_row("v", "/a/v.mp4", 3, "r1")])
    stage(store, "r1", WINDOWS, window_rows("v", 3))
    commit_run(store, "r1", NO_OPT)
    stage(store, "r2", VIDEOS, [video_row("v", "/a/v.mp4", 2, "r2", model_version="m2")])
    stage(store, "r2", WINDOWS, window_rows("v", 2, model_version="m2"))
    commit_run(store, "r2", NO_OPT)
    w = store.windows_for_video("v")
    assert w["window_idx"].tolist() == [0, 1] and set(w["model_version"]) == {"m2"}


def test_crash_before_commit_keeps_previous_version_and_next_run_finishes(store):
    stage(store, "r1", VIDEOS, [video_row("v1", "/a/one.mp4", 1, "r1")])
    stage(store, "r1", WINDOWS, window_rows("v1", 1))
    commit_run(store, "r1", NO_OPT)
    versions = store.table_versions()

    # run 2 crashes: its workers staged v2, nothing committed
    stage(store, "crashed", VIDEOS, [video_row("v2", "/a/two.mp4", 2, "crashed")])
    stage(store, "crashed", WINDOWS, window_rows("v2", 2))
    assert store.table_versions() == versions
    assert store.videos_df()["video_id"].tolist() == ["v1"]  # previous version readable
    assert "v2" not in store.indexed_video_ids("m1")  # so the next catalog schedules it again

    # a reader opened before run 3 commits still reads run 1's data, then sees run 3's commit
    reader = FeatureStore.open(store.uri)
    assert reader.counts()["windows"] == 1

    # run 3 redoes v2 and commits; the dead run's staging dir is discarded
    stage(store, "r3", VIDEOS, [video_row("v2", "/a/two.mp4", 2, "r3")])
    stage(store, "r3", WINDOWS, window_rows("v2", 2))
    old = os.path.join(store.uri, "_staging", "crashed")
    os.utime(old, (0, 0))
    for dirpath, _, files in os.walk(old):
        for f in files:
            os.utime(os.path.join(dirpath, f), (0, 0))
    result = commit_run(store, "r3", CommitConfig(optimize_after=False, discard_stale_runs_older_than_s=3600))
    assert result.discarded_runs == ["crashed"]
    assert shards.list_staged_runs(store.uri) == []
    assert store.videos_df()["video_id"].tolist() == ["v1", "v2"]
    assert reader.counts()["windows"] == 3  # read consistency: the reader sees the new commit
    assert store.videos_df().set_index("video_id").loc["v2", "run_id"] == "r3"


def test_failures_rows_and_known_failures_not_repeated(store):
    err = DecodeError("/a/bad.mp4", "truncated stream")
    stage(store, "r1", FAILURES, [failure_row(err, run_id="r1", video_id="bad1", at=AT),
                                  failure_row(err, run_id="r1", video_id="bad1", at=AT)])
    stage(store, "r1", VIDEOS, [video_row("bad1", "/a/bad.mp4", 0, "r1", status="failed")])
    result = commit_run(store, "r1", NO_OPT)
    assert result.tables[FAILURES].rows_written == 1  # duplicate key deduped
    f = store.failures_df()
    assert f[["uri", "video_id", "stage", "error_type", "message", "run_id"]].values.tolist() == [
        ["/a/bad.mp4", "bad1", "decode", "DecodeError", "truncated stream", "r1"]]
    assert store.videos_df()["status"].tolist() == ["failed"]
    versions = store.table_versions()

    # the same failure in the next run is not recorded again; a new failure is
    stage(store, "r2", FAILURES, [failure_row(err, run_id="r2", video_id="bad1", at=AT),
                                  failure_row(DecodeError("/a/c.mp4", "no frames"), run_id="r2", at=AT)])
    stage(store, "r2", VIDEOS, [video_row("bad1", "/a/bad.mp4", 0, "r1", status="failed")])
    commit_run(store, "r2", NO_OPT)
    assert store.failures_df()["uri"].tolist() == ["/a/bad.mp4", "/a/c.mp4"]
    assert store.table_versions()[VIDEOS] == versions[VIDEOS]
    assert store.table_versions()[FAILURES] == versions[FAILURES] + 1


def test_failed_retry_does_not_downgrade_indexed_video(store):
    stage(store, "r1", VIDEOS, [video_row("v1", "/a/one.mp4", 1, "r1")])
    stage(store, "r1", WINDOWS, window_rows("v1", 1))
    commit_run(store, "r1", NO_OPT)
    stage(store, "r2", VIDEOS, [video_row("v1", "/a/one.mp4", 0, "r2", status="failed")])
    commit_run(store, "r2", NO_OPT)
    assert store.videos_df()["status"].tolist() == ["indexed"]
    assert len(store.windows_for_video("v1")) == 1


def test_commit_with_compaction_keeps_data(store):
    for i in range(3):
        run = f"r{i}"
        stage(store, run, VIDEOS, [video_row(f"v{i}", f"/a/{i}.mp4", 2, run)])
        stage(store, run, WINDOWS, window_rows(f"v{i}", 2, seed=i))
        result = commit_run(store, run)
    assert result.compacted_tables == ["windows", "videos"]
    assert store.counts()["windows"] == 6
    assert store.table(WINDOWS).stats()["fragment_stats"]["num_fragments"] == 1


def test_changed_file_that_now_fails_removes_old_windows(store):
    stage(store, "r1", VIDEOS, [video_row("old", "/a/clip.mp4", 2, "r1")])
    stage(store, "r1", WINDOWS, window_rows("old", 2))
    commit_run(store, "r1", NO_OPT)
    versions = store.table_versions()
    stage(store, "r2", VIDEOS, [video_row("new", "/a/clip.mp4", 0, "r2", status="failed")])
    stage(store, "r2", FAILURES, [failure_row(DecodeError("/a/clip.mp4", "truncated"), run_id="r2", video_id="new", at=AT)])
    result = commit_run(store, "r2", NO_OPT)
    assert result.replaced_video_ids == ["old"]
    assert result.tables[WINDOWS].rows_deleted == 2
    assert store.table_versions() == {"videos": versions["videos"] + 1, "windows": versions["windows"] + 1,
                                      "failures": versions["failures"] + 1, "answers": versions["answers"]}
    assert store.counts()["windows"] == 0
    assert store.videos_df()[["video_id", "status"]].values.tolist() == [["new", "failed"]]


def _store_rows(store):
    videos = store.videos_df().sort_values("video_id")[["video_id", "uri", "n_windows", "model_version"]]
    out = {"videos": videos.values.tolist()}
    for vid in videos["video_id"]:
        w = store.windows_for_video(vid)
        out[vid] = [(int(i), round(float(t[0][0]), 6), mv) for i, t, mv in zip(w["window_idx"], w["tokens"], w["model_version"])]
    return out


def _two_runs(store, config):
    """r1: five videos; r2: one re-indexed with a new model version (fewer windows), one changed file (new id,
    same uri), one staged twice (the older attempt has more windows), one new video, one unchanged."""
    for i in range(5):
        stage(store, "r1", VIDEOS, [video_row(f"v{i}", f"/a/{i}.mp4", 3, "r1")])
        stage(store, "r1", WINDOWS, window_rows(f"v{i}", 3, seed=i))
    first = commit_run(store, "r1", config)
    stage(store, "r2", WINDOWS, window_rows("v0", 2, seed=10, model_version="m2"))
    stage(store, "r2", VIDEOS, [video_row("v0", "/a/0.mp4", 2, "r2", model_version="m2")])
    stage(store, "r2", WINDOWS, window_rows("x1", 4, seed=11))
    stage(store, "r2", VIDEOS, [video_row("x1", "/a/1.mp4", 4, "r2")])  # /a/1.mp4 changed: v1 -> x1
    stage(store, "r2", WINDOWS, window_rows("v5", 4, seed=12))
    stage(store, "r2", WINDOWS, window_rows("v5", 2, seed=13))  # retried: the newer attempt wins, no window 2-3
    stage(store, "r2", VIDEOS, [video_row("v5", "/a/5.mp4", 2, "r2")])
    stage(store, "r2", WINDOWS, window_rows("v2", 3, seed=2))
    stage(store, "r2", VIDEOS, [video_row("v2", "/a/2.mp4", 3, "r1")])  # unchanged: skipped
    second = commit_run(store, "r2", config)
    return first, second


def test_windows_commit_in_batches_equals_one_merge(tmp_path):
    """A byte bound per merge splits the windows write into batches of whole videos; what is stored is the
    same as with one merge, the videos table is still written once and last."""
    results = {}
    for name, max_bytes in (("one", 1 << 30), ("batched", 1)):
        store = FeatureStore.open(str(tmp_path / name), dim=D, n_query_tokens=Q)
        store.ensure_tables()
        versions = store.table_versions()
        first, second = _two_runs(store, CommitConfig(optimize_after=False, max_merge_bytes=max_bytes))
        results[name] = (_store_rows(store), first, second, versions, store.table_versions())
    one_rows, one_first, one_second, _, _ = results["one"]
    rows, first, second, before, after = results["batched"]
    assert rows == one_rows
    assert rows["videos"] == [["v0", "/a/0.mp4", 2, "m2"], ["v2", "/a/2.mp4", 3, "m1"], ["v3", "/a/3.mp4", 3, "m1"],
                              ["v4", "/a/4.mp4", 3, "m1"], ["v5", "/a/5.mp4", 2, "m1"], ["x1", "/a/1.mp4", 4, "m1"]]
    assert [w[0] for w in rows["v0"]] == [0, 1] and {w[2] for w in rows["v0"]} == {"m2"}
    assert [w[0] for w in rows["v5"]] == [0, 1]
    assert rows["v5"][0][1] == round(window_rows("v5", 2, seed=13)[0]["tokens"][0][0], 6)
    assert "v1" not in rows  # the changed file's old id is gone, windows included
    assert second.replaced_video_ids == ["v1"] and second.skipped_video_ids == ["v2"]
    # one merge per staged video shard in the batched store (each shard is over the byte bound), one in the other
    assert (one_first.tables[WINDOWS].merges, one_second.tables[WINDOWS].merges) == (1, 1)
    assert (first.tables[WINDOWS].merges, second.tables[WINDOWS].merges) == (5, 3)
    assert after[WINDOWS] - before[WINDOWS] == 5 + 3
    assert after[VIDEOS] - before[VIDEOS] == 2  # once per run, after the windows
    for a, b in ((one_first, first), (one_second, second)):
        for field in ("rows_staged", "rows_after_dedupe", "rows_written", "rows_deleted"):
            assert getattr(a.tables[WINDOWS], field) == getattr(b.tables[WINDOWS], field), field
    assert second.tables[WINDOWS].rows_staged == 15 and second.tables[WINDOWS].rows_after_dedupe == 8
    # v0's window 2 (re-indexed with two windows; its windows 0 and 1 are updated) and the changed file's three
    assert second.tables[WINDOWS].rows_deleted == 1 + 3


def _chunk(vid, first, n, *, seed):
    """Windows first .. first+n-1 of the video `window_rows(vid, ..., seed=seed)` describes."""
    return window_rows(vid, first + n, seed=seed)[first:]


def test_a_video_s_chunks_staged_in_several_shards_are_gathered_whole(tmp_path):
    """The job stages each chunk where it was encoded, so a video's windows lie in several shards, mixed with
    other videos'. Every byte bound stores the same rows; a batch never splits a video (its merge would
    delete the other batch's windows of that video)."""
    results = {}
    for name, max_bytes in (("one", 1 << 30), ("batched", 1)):
        store = FeatureStore.open(str(tmp_path / name), dim=D, n_query_tokens=Q)
        store.ensure_tables()
        stage(store, "r", WINDOWS, _chunk("a", 0, 2, seed=1) + _chunk("b", 0, 3, seed=2))
        stage(store, "r", WINDOWS, _chunk("c", 0, 1, seed=3) + _chunk("a", 2, 2, seed=1))
        stage(store, "r", WINDOWS, _chunk("b", 3, 1, seed=2) + _chunk("a", 4, 1, seed=1))
        stage(store, "r", VIDEOS, [video_row("a", "/a/a.mp4", 5, "r"), video_row("b", "/a/b.mp4", 4, "r"),
                                   video_row("c", "/a/c.mp4", 1, "r")])
        result = commit_run(store, "r", CommitConfig(optimize_after=False, max_merge_bytes=max_bytes))
        results[name] = (_store_rows(store), result)
    rows, batched = results["batched"]
    assert rows == results["one"][0]
    for vid, n, seed in (("a", 5, 1), ("b", 4, 2), ("c", 1, 3)):
        expected = [(w["window_idx"], round(w["tokens"][0][0], 6), "m1") for w in window_rows(vid, n, seed=seed)]
        assert rows[vid] == expected
    # shard 1 ends no video; shard 2 ends c; shard 3 ends a and b: two merges, each of whole videos
    assert batched.tables[WINDOWS].merges == 2 and results["one"][1].tables[WINDOWS].merges == 1
    assert batched.tables[WINDOWS].rows_written == 10


def test_staged_windows_of_a_video_not_listed_indexed_are_not_written(store):
    """Chunks encoded before a later chunk failed are staged, but the run lists the video failed (or not at all,
    for a retryable fault): none of its windows is written."""
    stage(store, "r", WINDOWS, window_rows("bad", 2) + window_rows("retry", 1) + window_rows("ok", 1))
    stage(store, "r", VIDEOS, [video_row("bad", "/a/bad.mp4", 0, "r", status="failed"),
                               video_row("ok", "/a/ok.mp4", 1, "r")])
    result = commit_run(store, "r", NO_OPT)
    assert result.tables[WINDOWS].rows_staged == 4 and result.tables[WINDOWS].rows_written == 1
    assert store.counts()["windows"] == 1 and len(store.windows_for_video("ok")) == 1


def test_an_indexed_video_with_windows_missing_becomes_a_commit_failure(store):
    """Never a listed video without its windows: the row is dropped, a failure says why, the next run redoes it."""
    stage(store, "r", WINDOWS, window_rows("short", 3)[:2] + window_rows("ok", 1))
    stage(store, "r", VIDEOS, [video_row("short", "/a/short.mp4", 3, "r"), video_row("ok", "/a/ok.mp4", 1, "r")])
    commit_run(store, "r", NO_OPT)
    assert store.videos_df()["video_id"].tolist() == ["ok"]
    assert len(store.windows_for_video("short")) == 0
    assert store.failures_df()[["uri", "video_id", "stage", "error_type", "message"]].values.tolist() == [
        ["/a/short.mp4", "short", "commit", "WindowCountMismatch", "2 of 3 windows staged"]]
    assert "short" not in store.indexed_video_ids("m1")


def test_a_removal_row_deletes_the_stored_video_and_is_not_stored(store):
    """The job stages a `removed` videos row for a video whose content left its uri while nothing new is indexed
    for that uri (its new content was indexed already under another uri): its rows go, the row is not stored."""
    from favor_ops.store.schema import STATUS_REMOVED

    stage(store, "r1", VIDEOS, [video_row("a", "/a/1.mp4", 2, "r1"), video_row("b", "/a/2.mp4", 1, "r1")])
    stage(store, "r1", WINDOWS, window_rows("a", 2) + window_rows("b", 1))
    commit_run(store, "r1", NO_OPT)
    versions = store.table_versions()
    stage(store, "r2", VIDEOS, [video_row("a", "/a/1.mp4", 0, "r2", status=STATUS_REMOVED),
                                video_row("gone", "/a/9.mp4", 0, "r2", status=STATUS_REMOVED)])  # never stored
    result = commit_run(store, "r2", NO_OPT)
    assert result.replaced_video_ids == ["a"]
    assert store.videos_df()["video_id"].tolist() == ["b"]
    assert len(store.windows_for_video("a")) == 0 and len(store.windows_for_video("b")) == 1
    assert result.tables[WINDOWS].rows_deleted == 2 and result.tables[VIDEOS].rows_deleted == 1
    after = store.table_versions()
    assert (after[VIDEOS], after[WINDOWS]) == (versions[VIDEOS] + 1, versions[WINDOWS] + 1)
    # again: nothing left to remove, nothing written
    stage(store, "r3", VIDEOS, [video_row("a", "/a/1.mp4", 0, "r3", status=STATUS_REMOVED)])
    assert not commit_run(store, "r3", NO_OPT).wrote_anything


def test_a_commit_into_an_older_windows_table_adds_the_frame_vector_columns(tmp_path):
    """A windows table created before frame_audio / frame_visual: the commit adds them (null in the rows already
    stored) and writes the new rows with theirs; a commit that writes no windows leaves the table as it is."""
    import lancedb

    from favor_ops.store.schema import FRAME_AUDIO_COLUMN, FRAME_VISUAL_COLUMN, WindowShape, table_schema
    from tests.store.test_schema import older_windows_schema

    shape = WindowShape(dim=D, n_query_tokens=Q)
    old_table = lancedb.connect(str(tmp_path / "db")).create_table(WINDOWS, schema=older_windows_schema(shape))
    old_table.add(pa.Table.from_pylist(window_rows("old", 1), schema=older_windows_schema(shape)))
    store = FeatureStore.open(str(tmp_path / "db"))
    store.ensure_tables()

    stage(store, "r0", FAILURES, [failure_row(DecodeError("/a/bad.mp4", "boom"), run_id="r0", at=AT)])
    commit_run(store, "r0", NO_OPT)  # no windows written: no new column
    assert FRAME_AUDIO_COLUMN not in store.table(WINDOWS).schema.names

    frames = np.arange(2 * 3 * D, dtype=np.float32).reshape(2, 3, D)  # (K, L, D)
    rows = window_rows("v", 2)
    rows[0][FRAME_AUDIO_COLUMN], rows[0][FRAME_VISUAL_COLUMN] = frames[0].tolist(), frames[1].tolist()
    stage(store, "r1", VIDEOS, [video_row("v", "/a/v.mp4", 2, "r1")])
    stage(store, "r1", WINDOWS, rows)
    result = commit_run(store, "r1", NO_OPT)
    assert result.tables[WINDOWS].rows_written == 2
    assert store.table(WINDOWS).schema.equals(table_schema(WINDOWS, shape), check_metadata=False)
    w = store.windows_for_video("v")
    np.testing.assert_array_equal(np.stack(w.loc[0, FRAME_AUDIO_COLUMN]), frames[0])
    np.testing.assert_array_equal(np.stack(w.loc[0, FRAME_VISUAL_COLUMN]), frames[1])
    assert w.loc[1, FRAME_AUDIO_COLUMN] is None and w.loc[1, FRAME_VISUAL_COLUMN] is None
    old = store.windows_for_video("old")
    assert len(old) == 1 and old.loc[0, FRAME_AUDIO_COLUMN] is None
