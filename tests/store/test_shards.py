import pickle

import pyarrow as pa
import pytest

from favor_ops.store import shards
from favor_ops.store.schema import FAILURES, VIDEOS, StoreSchemaError, failures_schema, videos_schema


def test_write_list_read_discard(tmp_path):
    db = str(tmp_path / "db")
    t1 = pa.table({"uri": ["a"], "stage": ["decode"], "error_type": ["E"], "run_id": ["r"]})
    t2 = pa.table({"uri": ["b", "c"], "stage": ["probe"] * 2, "error_type": ["E"] * 2, "run_id": ["r"] * 2})
    p1 = shards.write_shard(db, "r", FAILURES, t1)
    p2 = shards.write_shard(db, "r", FAILURES, t2)
    assert shards.write_shard(db, "r", FAILURES, t1.slice(0, 0)) is None  # empty: nothing written
    assert p1.startswith(str(tmp_path / "db" / "_staging" / "r" / "failures")) and p1.endswith(".arrow")
    # a half-written shard of a dead worker is hidden and ignored
    (tmp_path / "db" / "_staging" / "r" / "failures" / ".000-dead.arrow.tmp").write_bytes(b"garbage")
    assert shards.list_shards(db, "r", FAILURES) == [p1, p2]  # write order
    read = shards.read_shards(db, "r", FAILURES)
    assert [t.column("uri").to_pylist() for t in read] == [["a"], ["b", "c"]]
    assert shards.list_shards(db, "r", VIDEOS) == []
    assert shards.list_staged_runs(db) == ["r"]
    assert shards.discard_run(db, "r") is True
    assert shards.list_staged_runs(db) == [] and shards.discard_run(db, "r") is False


def test_memory_filesystem_staging():
    db = "memory://favor-shards-test/db"
    p = shards.write_shard(db, "run-1", FAILURES, pa.table({"uri": ["x"]}))
    assert p.endswith(".arrow")
    assert shards.read_shards(db, "run-1", FAILURES)[0].column("uri").to_pylist() == ["x"]
    assert shards.discard_run(db, "run-1")


def test_bad_run_id_and_table_rejected(tmp_path):
    with pytest.raises(StoreSchemaError):
        shards.write_shard(str(tmp_path), "../escape", FAILURES, pa.table({"uri": ["x"]}))
    with pytest.raises(StoreSchemaError):
        shards.write_shard(str(tmp_path), "r", "nope", pa.table({"uri": ["x"]}))


def test_shard_writer_buffers_and_pickles(tmp_path):
    db = str(tmp_path / "db")
    writer = shards.ShardWriter(db, "r", {FAILURES: failures_schema(), VIDEOS: videos_schema()}, max_buffered_rows=3)
    writer = pickle.loads(pickle.dumps(writer))
    row = {"uri": "u", "stage": "decode", "error_type": "E", "run_id": "r"}
    writer.add(FAILURES, [row, row])
    assert shards.list_shards(db, "r", FAILURES) == []
    writer.add(FAILURES, [row])  # reaches 3 rows: flushed
    assert len(shards.list_shards(db, "r", FAILURES)) == 1
    writer.add(FAILURES, [row])
    written = writer.flush()
    assert len(written) == 1 and writer.flush() == []
    tables = shards.read_shards(db, "r", FAILURES)
    assert [t.num_rows for t in tables] == [3, 1]
    assert tables[0].schema.equals(failures_schema())


def test_shard_writer_flushes_at_its_byte_bound(tmp_path):
    db = str(tmp_path / "db")
    row = {"uri": "u" * 1000, "stage": "decode", "error_type": "E", "run_id": "r"}
    one_row_bytes = pa.Table.from_pylist([row], schema=failures_schema()).nbytes
    writer = shards.ShardWriter(db, "r", {FAILURES: failures_schema()}, max_buffered_bytes=int(2.5 * one_row_bytes))
    writer.add(FAILURES, [row])
    writer.add(FAILURES, [row])
    assert shards.list_shards(db, "r", FAILURES) == []
    writer.add(FAILURES, [row])  # over 2.5 rows' bytes: flushed
    writer.add(FAILURES, [row])
    writer.flush()
    assert [t.num_rows for t in shards.read_shards(db, "r", FAILURES)] == [3, 1]
