"""Per-frame vectors through the store: WindowRows (the index job's encoded chunks) -> `windows` shards -> commit ->
stored_windows, whose PromptWindows carry each window's (L, E) frame_audio / frame_visual, or None."""

from __future__ import annotations

import datetime as dt

import numpy as np

from favor_ops.qa.evidence import stored_windows
from favor_ops.store.commit import CommitConfig, commit_run
from favor_ops.store.feature_store import FeatureStore
from favor_ops.store.schema import VIDEOS, WINDOWS, WindowShape, conform
from favor_ops.store.shards import ShardWriter
from pipelines.index.elements import WindowRows
from pipelines.index.store_transform import window_rows_to_records
from tests.store.test_schema import older_windows_schema

D, Q, L = 8, 4, 3  # stored width, query tokens, frames per window
AT = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)


def _rows(video_id: str, k: int, *, frames: bool, seed: int = 0) -> WindowRows:
    rng = np.random.default_rng(seed)
    unit = lambda x: (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)  # noqa: E731
    idx = np.arange(k, dtype=np.int32)
    vec = unit(rng.normal(size=(k, D)))
    return WindowRows(video_id, 0, idx, idx * 5.0, idx * 5.0 + 5.0, unit(rng.normal(size=(k, Q, D))), vec, vec, vec,
                      True, True, transcripts=[""] * k,
                      frame_audio=unit(rng.normal(size=(k, L, D))) if frames else None,  # (K, L, D)
                      frame_visual=unit(rng.normal(size=(k, L, D))) if frames else None)


def _commit(store: FeatureStore, run_id: str, rows: WindowRows) -> None:
    n = len(rows.window_idx)
    video = {"video_id": rows.video_id, "uri": f"/a/{rows.video_id}.mp4", "duration_s": 5.0 * n, "fps": 2.0,
             "has_audio": True, "has_video": True, "n_windows": n, "model_version": "m1", "indexed_at": AT,
             "status": "indexed", "run_id": run_id}
    writer = ShardWriter(store.uri, run_id, {name: store.schema(name) for name in (VIDEOS, WINDOWS)})  # as the job
    writer.add(WINDOWS, window_rows_to_records(rows, "m1"))
    writer.add(VIDEOS, [video])
    writer.flush()
    commit_run(store, run_id, CommitConfig(optimize_after=False))


def test_frame_vectors_round_trip_from_window_rows_to_prompt_windows(tmp_path):
    store = FeatureStore.open(str(tmp_path / "db"), dim=D, n_query_tokens=Q)
    with_frames, without = _rows("aa", 3, frames=True, seed=1), _rows("bb", 2, frames=False, seed=2)
    _commit(store, "r1", with_frames)
    _commit(store, "r2", without)

    windows = stored_windows(store, "aa")
    assert len(windows) == 3
    for i, w in enumerate(windows):
        assert w.frame_audio.dtype == np.float32 and w.frame_audio.shape == (L, D)
        np.testing.assert_array_equal(w.frame_audio, with_frames.frame_audio[i])  # float32 stored: exact
        np.testing.assert_array_equal(w.frame_visual, with_frames.frame_visual[i])
        np.testing.assert_array_equal(w.tokens, with_frames.tokens[i])
    assert all(w.frame_audio is None and w.frame_visual is None for w in stored_windows(store, "bb"))


def test_windows_of_an_older_table_have_no_frame_vectors_and_new_ones_are_written(tmp_path):
    import lancedb

    shape = WindowShape(dim=D, n_query_tokens=Q)
    table = lancedb.connect(str(tmp_path / "db")).create_table(WINDOWS, schema=older_windows_schema(shape))
    old = _rows("aa", 2, frames=False)
    table.add(conform(window_rows_to_records(old, "m0"), older_windows_schema(shape), table=WINDOWS))
    store = FeatureStore.open(str(tmp_path / "db"))
    assert [(w.frame_audio, w.frame_visual) for w in stored_windows(store, "aa")] == [(None, None)] * 2

    new = _rows("bb", 2, frames=True, seed=3)
    _commit(store, "r1", new)
    np.testing.assert_array_equal(np.stack([w.frame_visual for w in stored_windows(store, "bb")]), new.frame_visual)
    assert all(w.frame_audio is None for w in stored_windows(store, "aa"))
