"""What "a re-run converges to a clean run" compares: the store's tables by count, keys and vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from favor_ops.store.feature_store import FeatureStore

VIDEO_COLUMNS = ["video_id", "uri", "status", "n_windows", "has_audio", "has_video", "model_version"]
VECTOR_COLUMNS = ("tokens", "pooled", "audio_vec", "visual_vec")
VECTOR_ATOL = 1e-5  # the tiny model is seeded; batch composition changes float rounding only


@dataclass
class StoreTables:
    videos: list[tuple]  # VIDEO_COLUMNS + duration rounded to 1 ms, sorted
    failure_keys: list[tuple]  # (uri, video_id, stage, error_type), sorted
    failure_runs: list[str]  # run_id of each failure row, same order
    window_keys: list[tuple]  # (video_id, window_idx, t_start, t_end), sorted
    vectors: dict[str, np.ndarray]  # column -> (n_windows, ...) float32 in window_keys order

    def checksum(self) -> dict[str, tuple[float, float]]:
        """Per vector column: (sum, sum of squares) over every window, float64."""
        return {c: (float(v.astype(np.float64).sum()), float(np.square(v.astype(np.float64)).sum()))
                for c, v in self.vectors.items()}


def read_tables(db) -> StoreTables:
    store = FeatureStore.open(str(db))
    videos = store.videos_df()
    video_rows = sorted(
        tuple(None if pd.isna(row[c]) else row[c] for c in VIDEO_COLUMNS)
        + (None if pd.isna(row["duration_s"]) else round(float(row["duration_s"]), 3),)
        for row in videos.to_dict("records")
    )
    failures = store.failures_df().sort_values(["uri", "stage", "error_type", "run_id"], ignore_index=True)
    failure_keys = [tuple(r) for r in failures[["uri", "video_id", "stage", "error_type"]].itertuples(index=False)]
    windows = store.table("windows").search().limit(None).to_pandas()
    windows = windows.sort_values(["video_id", "window_idx"], ignore_index=True)
    keys = [(r.video_id, int(r.window_idx), float(r.t_start), float(r.t_end)) for r in windows.itertuples(index=False)]
    vectors = {}
    for column in VECTOR_COLUMNS:
        cells = windows[column].to_list()
        if column == "tokens":
            vectors[column] = np.stack([np.stack(c) for c in cells]).astype(np.float32) if cells else np.zeros((0,))
        else:
            vectors[column] = np.stack(cells).astype(np.float32) if cells else np.zeros((0,))
    return StoreTables(video_rows, failure_keys, failures["run_id"].to_list(), keys, vectors)


def assert_converged(got: StoreTables, clean: StoreTables, *, extra_failure_keys: list[tuple] = ()) -> None:
    """`got` has the clean run's videos, windows and vectors; its failures are the clean run's plus
    `extra_failure_keys` (what the faulted run itself recorded: the failures table is a log)."""
    assert got.videos == clean.videos
    assert len(got.window_keys) == len(clean.window_keys)
    assert got.window_keys == clean.window_keys
    for column in VECTOR_COLUMNS:
        np.testing.assert_allclose(got.vectors[column], clean.vectors[column], atol=VECTOR_ATOL, err_msg=column)
    got_sums = got.checksum()
    for column, sums in clean.checksum().items():
        assert np.allclose(got_sums[column], sums, rtol=0, atol=1e-3), (column, got_sums[column], sums)
    assert sorted(got.failure_keys) == sorted(list(clean.failure_keys) + list(extra_failure_keys))
