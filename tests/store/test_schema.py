import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from favor_ops.errors import ProbeError
from favor_ops.store.feature_store import FeatureStore
from favor_ops.store.schema import (
    ANSWERS,
    FAILURES,
    FRAME_AUDIO_COLUMN,
    FRAME_VISUAL_COLUMN,
    VIDEOS,
    WINDOWS,
    StoreSchemaError,
    WindowShape,
    check_window_tokens,
    conform,
    failure_row,
    table_schema,
    window_shape_of,
)

SHAPE = WindowShape(dim=8, n_query_tokens=4)


def test_windows_schema_types_come_from_shape():
    schema = table_schema(WINDOWS, SHAPE)
    assert schema.field("tokens").type == pa.list_(pa.list_(pa.float32(), 8))
    assert schema.field("pooled").type == pa.list_(pa.float32(), 8)
    assert schema.field("audio_vec").type.list_size == 8
    assert schema.field("window_idx").type == pa.int32()
    for name in (FRAME_AUDIO_COLUMN, FRAME_VISUAL_COLUMN):  # (L, D) per frame, like tokens; null without them
        assert schema.field(name).type == schema.field("tokens").type and schema.field(name).nullable
    assert window_shape_of(schema) == SHAPE
    assert table_schema(WINDOWS, WindowShape(dim=5, n_query_tokens=2)).field("pooled").type.list_size == 5
    with pytest.raises(ValueError):
        table_schema(WINDOWS)


def test_round_trip_through_lancedb(tmp_path):
    store = FeatureStore.open(str(tmp_path / "db"), dim=8, n_query_tokens=4)
    store.ensure_tables()
    for name in (VIDEOS, WINDOWS, FAILURES, ANSWERS):
        assert store.table(name).schema.equals(table_schema(name, SHAPE), check_metadata=False), name
    # reopened without dim: D and the query token count are read back from the table
    again = FeatureStore.open(str(tmp_path / "db"))
    assert again.shape == SHAPE
    with pytest.raises(StoreSchemaError):
        FeatureStore.open(str(tmp_path / "db"), dim=16)

    tokens = np.arange(4 * 8, dtype=np.float32).reshape(4, 8) / 10
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone.utc)
    row = {
        "video_id": "ab" * 8, "window_idx": 3, "t_start": 15.0, "t_end": 20.0,
        "tokens": tokens.tolist(), "pooled": tokens.mean(0).tolist(),
        "audio_vec": [1.0] * 8, "visual_vec": [0.5] * 8,
        "has_audio": True, "has_video": False, "transcript": "say apple", "model_version": "m1",
    }
    store.table(WINDOWS).add(conform([row], store.schema(WINDOWS), table=WINDOWS))
    got = store.windows_for_video("ab" * 8)
    assert len(got) == 1
    np.testing.assert_allclose(np.stack(got.loc[0, "tokens"]), tokens)
    assert got.loc[0, "t_end"] == 20.0 and got.loc[0, "transcript"] == "say apple"
    assert got.loc[0, "has_video"] == False  # noqa: E712

    answer = {"question_id": "q1", "video_id": "v", "question": "what?", "answer": "a red circle",
              "evidence": [{"t_start": 0.0, "t_end": 5.0}], "model_version": "m1", "error": None, "at": at}
    assert store.upsert_answers([answer, {**answer, "answer": "a blue square"}]) == 1
    answers = store.answers_df()
    assert answers["answer"].tolist() == ["a blue square"]
    assert answers.loc[0, "evidence"][0] == {"t_start": 0.0, "t_end": 5.0}
    assert answers.loc[0, "at"].to_pydatetime() == at


def test_conform_rejects_wrong_width_and_missing_keys():
    schema = table_schema(WINDOWS, SHAPE)
    bad = pa.table({"video_id": ["a"], "window_idx": [0], "model_version": ["m"],
                    "pooled": pa.array([[1.0] * 7], pa.list_(pa.float32()))})
    with pytest.raises(StoreSchemaError):
        conform(bad, schema, table=WINDOWS)
    with pytest.raises(StoreSchemaError):
        conform(pa.table({"window_idx": [0]}), schema, table=WINDOWS)
    ok = conform(pa.table({"video_id": ["a"], "window_idx": [0], "model_version": ["m"]}), schema)
    assert ok.schema.equals(schema) and ok.column("pooled").null_count == 1
    three_tokens = conform([{"video_id": "a", "window_idx": 0, "model_version": "m", "tokens": [[0.0] * 8] * 3}], schema)
    with pytest.raises(StoreSchemaError, match="4 query tokens"):
        check_window_tokens(three_tokens, SHAPE)


def test_failure_row_from_stage_error():
    at = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)
    row = failure_row(ProbeError("/a/b.mp4", "no video stream\nmore"), run_id="r1", at=at)
    assert row == {"uri": "/a/b.mp4", "video_id": None, "stage": "probe", "error_type": "ProbeError",
                   "message": "no video stream", "run_id": "r1", "at": at}
    plain = failure_row(RuntimeError("boom"), run_id="r1", uri="/x.mp4", stage="encode", at=at)
    assert (plain["error_type"], plain["message"], plain["stage"]) == ("RuntimeError", "boom", "encode")
    conform([row, plain], table_schema(FAILURES))


def older_windows_schema(shape: WindowShape) -> pa.Schema:
    """`windows` as created before the per-frame vector columns."""
    current = table_schema(WINDOWS, shape)
    return pa.schema([f for f in current if f.name not in (FRAME_AUDIO_COLUMN, FRAME_VISUAL_COLUMN)],
                     metadata=current.metadata)


def test_an_older_windows_table_reads_as_is_and_gains_the_missing_columns_once(tmp_path):
    import lancedb

    lancedb.connect(str(tmp_path / "db")).create_table(WINDOWS, schema=older_windows_schema(SHAPE))
    store = FeatureStore.open(str(tmp_path / "db"))
    assert store.shape == SHAPE
    old_row = {"video_id": "v", "window_idx": 0, "tokens": [[0.5] * 8] * 4, "model_version": "m0"}
    store.table(WINDOWS).add(conform([old_row], older_windows_schema(SHAPE)))
    assert FRAME_AUDIO_COLUMN not in store.windows_for_video("v")  # reading never changes the table
    version = store.table_version(WINDOWS)

    assert store.add_missing_columns(WINDOWS) == [FRAME_AUDIO_COLUMN, FRAME_VISUAL_COLUMN]
    assert store.table(WINDOWS).schema.equals(table_schema(WINDOWS, SHAPE), check_metadata=False)
    assert store.table_version(WINDOWS) == version + 1
    assert store.add_missing_columns(WINDOWS) == [] and store.table_version(WINDOWS) == version + 1
    got = store.windows_for_video("v")
    assert got.loc[0, FRAME_AUDIO_COLUMN] is None and got.loc[0, FRAME_VISUAL_COLUMN] is None
    np.testing.assert_array_equal(np.stack(got.loc[0, "tokens"]), np.full((4, 8), 0.5, np.float32))
