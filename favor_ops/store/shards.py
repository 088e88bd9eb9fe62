"""Shard files: what workers write before the run's single commit.

Workers (Beam bundles on any machine) never touch the Lance tables. Each writes its rows as
Arrow IPC files into a staging area under the store URI:

    <db>/_staging/<run_id>/<table>/<time_ns 20 digits>-<uuid hex>.arrow

A shard is written under a hidden temporary name first and renamed when complete, so a worker
that dies mid-write leaves only a hidden file that listing ignores. Shard names sort in write
order (time prefix), which gives the commit its deterministic "last writer wins" rule.

Everything goes through fsspec, so <db> can be a local directory or an object store URI.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import fsspec
import fsspec.implementations.local
import pyarrow as pa
import pyarrow.ipc as ipc

from favor_ops.store.schema import StoreSchemaError, TABLE_NAMES

STAGING_DIR = "_staging"
SHARD_SUFFIX = ".arrow"
_RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _fs(uri: str, fs_options: Mapping | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(uri, **dict(fs_options or {}))
    return fs, path.rstrip("/")


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID_PATTERN.match(run_id):
        raise StoreSchemaError(str(run_id), "run_id must be 1-128 chars of [A-Za-z0-9._-], not starting with . or -")
    return run_id


def _check_table(table_name: str) -> str:
    if table_name not in TABLE_NAMES:
        raise StoreSchemaError(table_name, f"unknown store table; expected one of {TABLE_NAMES}")
    return table_name


def staging_path(fs_path: str, run_id: str | None = None, table_name: str | None = None) -> str:
    parts = [fs_path.rstrip("/"), STAGING_DIR]
    if run_id is not None:
        parts.append(check_run_id(run_id))
        if table_name is not None:
            parts.append(_check_table(table_name))
    return "/".join(parts)


def new_shard_name() -> str:
    """`<time_ns>-<uuid>.arrow`: sorts by write time, unique across workers."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex}{SHARD_SUFFIX}"


def write_shard(
    db_uri: str,
    run_id: str,
    table_name: str,
    data: pa.Table,
    *,
    fs_options: Mapping | None = None,
) -> str | None:
    """Write one shard of `table_name` rows for `run_id`; returns its fsspec path, None when empty.

    Empty tables are not written (a commit of a run without rows must write nothing).
    """
    _check_table(table_name)
    if data.num_rows == 0:
        return None
    fs, root = _fs(db_uri, fs_options)
    directory = staging_path(root, run_id, table_name)
    fs.makedirs(directory, exist_ok=True)
    name = new_shard_name()
    final = f"{directory}/{name}"
    temporary = f"{directory}/.{name}.tmp"
    with fs.open(temporary, "wb") as sink:
        with ipc.new_file(sink, data.schema) as writer:
            writer.write_table(data)
    fs.mv(temporary, final)
    return final


def list_shards(db_uri: str, run_id: str, table_name: str, *, fs_options: Mapping | None = None) -> list[str]:
    """Complete shards of one run and table, oldest first (hidden temp files are skipped)."""
    fs, root = _fs(db_uri, fs_options)
    directory = staging_path(root, run_id, table_name)
    if not fs.exists(directory):
        return []
    names = [p for p in fs.ls(directory, detail=False)]
    shards = [p for p in names if p.endswith(SHARD_SUFFIX) and not p.rsplit("/", 1)[-1].startswith(".")]
    return sorted(shards, key=lambda p: p.rsplit("/", 1)[-1])


def read_shard(path: str, *, db_uri: str, fs_options: Mapping | None = None) -> pa.Table:
    fs, _ = _fs(db_uri, fs_options)
    with fs.open(path, "rb") as source:
        return ipc.open_file(source).read_all()


def read_shard_columns(path: str, columns: list[str], *, db_uri: str, fs_options: Mapping | None = None) -> pa.Table:
    """Some columns of a shard. A local shard is memory-mapped, so the columns not asked for (the window
    tokens) are never read from disk; other filesystems read the whole file."""
    fs, _ = _fs(db_uri, fs_options)
    if isinstance(fs, fsspec.implementations.local.LocalFileSystem):
        with pa.memory_map(path, "r") as source:
            return ipc.open_file(source).read_all().select(columns)
    return read_shard(path, db_uri=db_uri, fs_options=fs_options).select(columns)


def read_shards(
    db_uri: str, run_id: str, table_name: str, *, fs_options: Mapping | None = None
) -> list[pa.Table]:
    """All shards of a run's table, in write order (oldest first)."""
    return [read_shard(p, db_uri=db_uri, fs_options=fs_options) for p in list_shards(db_uri, run_id, table_name, fs_options=fs_options)]


def list_staged_runs(db_uri: str, *, fs_options: Mapping | None = None) -> list[str]:
    """Run ids that have a staging directory (committed runs remove theirs)."""
    fs, root = _fs(db_uri, fs_options)
    directory = staging_path(root)
    if not fs.exists(directory):
        return []
    runs = []
    for entry in fs.ls(directory, detail=True):
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry.get("type") == "directory" and _RUN_ID_PATTERN.match(name):
            runs.append(name)
    return sorted(runs)


def _newest_mtime_s(fs: fsspec.AbstractFileSystem, directory: str) -> float | None:
    newest = None
    for _, _, files in fs.walk(directory, detail=True):
        for info in files.values():
            keys = ("mtime", "LastModified", "last_modified", "updated", "created")
            mtime = next((info[k] for k in keys if info.get(k) is not None), None)
            if mtime is None:
                continue
            seconds = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime)
            newest = seconds if newest is None else max(newest, seconds)
    return newest


def discard_run(db_uri: str, run_id: str, *, fs_options: Mapping | None = None) -> bool:
    """Remove a run's staging directory; True when something was removed."""
    fs, root = _fs(db_uri, fs_options)
    directory = staging_path(root, run_id)
    if not fs.exists(directory):
        return False
    fs.rm(directory, recursive=True)
    return True


def discard_stale_runs(
    db_uri: str,
    *,
    keep: Iterable[str] = (),
    older_than_s: float = 24 * 3600.0,
    fs_options: Mapping | None = None,
) -> list[str]:
    """Remove staging dirs of runs (not in `keep`) whose newest shard is older than `older_than_s`.

    These are runs that died before committing; their videos are not in `videos`, so the next
    catalog schedules them again. A run with no readable timestamp counts as stale.
    """
    fs, root = _fs(db_uri, fs_options)
    keep_set = set(keep)
    removed = []
    now_s = time.time()
    for run_id in list_staged_runs(db_uri, fs_options=fs_options):
        if run_id in keep_set:
            continue
        newest = _newest_mtime_s(fs, staging_path(root, run_id))
        if newest is None or now_s - newest >= older_than_s:
            fs.rm(staging_path(root, run_id), recursive=True)
            removed.append(run_id)
    return removed


@dataclass
class ShardWriter:
    """Buffers rows per table and writes one shard per table on flush (e.g. per Beam bundle).

    Holds only strings and lists, so it pickles into Beam workers. Not thread-safe.
    """

    db_uri: str
    run_id: str
    schemas: Mapping[str, pa.Schema]  # table name -> schema the rows are cast to
    fs_options: Mapping | None = None
    max_buffered_rows: int = 4096  # flush a table's buffer once it holds this many rows
    max_buffered_bytes: int = 16 << 20  # ... or this many bytes of Arrow data (a worker's buffer, a shard's size)
    _buffers: dict[str, list] = field(default_factory=dict, init=False, repr=False)
    written: list[str] = field(default_factory=list, init=False)  # shard paths written so far

    def __post_init__(self):
        check_run_id(self.run_id)
        for name in self.schemas:
            _check_table(name)

    def add(self, table_name: str, rows: pa.Table | list[dict]) -> None:
        from favor_ops.store.schema import conform

        if table_name not in self.schemas:
            raise StoreSchemaError(table_name, "no schema given to this ShardWriter for that table")
        batch = conform(rows, self.schemas[table_name], table=table_name)
        if batch.num_rows == 0:
            return
        buffer = self._buffers.setdefault(table_name, [])
        buffer.append(batch)
        if sum(t.num_rows for t in buffer) >= self.max_buffered_rows or sum(t.nbytes for t in buffer) >= self.max_buffered_bytes:
            self._flush_table(table_name)

    def _flush_table(self, table_name: str) -> None:
        buffer = self._buffers.pop(table_name, [])
        if not buffer:
            return
        path = write_shard(self.db_uri, self.run_id, table_name, pa.concat_tables(buffer), fs_options=self.fs_options)
        if path:
            self.written.append(path)

    def flush(self) -> list[str]:
        """Write every buffered table; returns the paths written by this call."""
        before = len(self.written)
        for name in list(self._buffers):
            self._flush_table(name)
        return self.written[before:]
