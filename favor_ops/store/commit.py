"""One commit per run: staged shards -> merge_insert into the Lance tables.

Steps of `commit_run(store, run_id)`:
1. read every shard of the run (oldest first) and cast it to the table schema;
2. deduplicate keys inside the batch, last writer wins: a later shard beats an earlier one and,
   inside a shard, a later row beats an earlier one. Windows are chosen per video: all windows
   of a video come from the latest shard that holds that video (never a mix of two attempts);
3. drop what would not change anything: a `videos` row equal to the stored one in
   (uri, model_version, status) and its windows; a failed attempt never replaces a video
   already indexed with the same model version; a failure equal to one already recorded for the
   same (uri, video_id, stage, error_type, message) (configurable);
4. write each table at most once (one Lance version per written table): `windows`, then
   `failures`, then `videos` last, so a crash in between leaves a video un-listed and the next
   run redoes it. A changed file (same uri, new video_id) replaces its rows inside the same
   merge: `when_not_matched_by_source_delete` removes the old video_id's windows and videos row;
5. remove the run's staging directory; optionally drop stale staging dirs of dead runs and
   compact the written tables.

Nothing is written for an empty or unchanged batch: no merge_insert with empty data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from favor_ops.store import shards
from favor_ops.store.feature_store import FeatureStore, sql_in
from favor_ops.store.schema import (
    ANSWERS,
    FAILURES,
    STATUS_FAILED,
    STATUS_INDEXED,
    TABLE_KEYS,
    StoreSchemaError,
    VIDEOS,
    WINDOWS,
    check_window_tokens,
    conform,
)

_ORDER = "__favor_order"  # (shard ordinal, row) position in write order
_SHARD = "__favor_shard"


@dataclass(frozen=True)
class CommitConfig:
    skip_unchanged_videos: bool = True  # drop staged videos identical to stored ones (and their windows)
    skip_known_failures: bool = True  # do not record again a failure already recorded by an earlier run
    optimize_after: bool = True  # compact the written tables after the commit
    keep_versions: int | None = 10  # versions kept when compacting (None: LanceDB default age)
    discard_stale_runs_older_than_s: float | None = 24 * 3600.0  # None: leave dead runs' staging dirs


@dataclass
class TableWrite:
    table: str
    rows_staged: int = 0  # rows read from shards
    rows_after_dedupe: int = 0
    rows_written: int = 0  # inserted + updated
    rows_deleted: int = 0
    version_before: int = 0
    version_after: int = 0  # right after this table's single write (before any compaction)

    @property
    def written(self) -> bool:
        return self.version_after != self.version_before


@dataclass
class CommitResult:
    run_id: str
    tables: dict[str, TableWrite] = field(default_factory=dict)
    replaced_video_ids: list[str] = field(default_factory=list)  # old ids of changed files
    skipped_video_ids: list[str] = field(default_factory=list)  # unchanged, not rewritten
    discarded_runs: list[str] = field(default_factory=list)
    compacted_tables: list[str] = field(default_factory=list)

    @property
    def wrote_anything(self) -> bool:
        return any(t.written for t in self.tables.values())


# ---- dedupe -------------------------------------------------------------------------------


def _with_order(batches: Sequence[pa.Table]) -> pa.Table | None:
    """Concatenate shards (oldest first) adding shard ordinal and global write order columns."""
    tagged = []
    offset = 0
    for ordinal, batch in enumerate(batches):
        n = batch.num_rows
        batch = batch.append_column(_SHARD, pa.array(np.full(n, ordinal, dtype=np.int64)))
        batch = batch.append_column(_ORDER, pa.array(np.arange(offset, offset + n, dtype=np.int64)))
        offset += n
        tagged.append(batch)
    if not tagged:
        return None
    return pa.concat_tables(tagged)


def _drop_helpers(table: pa.Table) -> pa.Table:
    return table.drop_columns([c for c in (_ORDER, _SHARD) if c in table.column_names])


def dedupe_last(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    """Keep the last row of each key (row order = write order); output in write order."""
    if table.num_rows == 0:
        return table
    positions = table.select(list(keys)).append_column("__pos", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    last = positions.group_by(list(keys), use_threads=False).aggregate([("__pos", "max")])
    if last.num_rows == table.num_rows:  # no key repeats: keep the table as it is (no copy of the vectors)
        return table
    keep = np.sort(last.column("__pos_max").to_numpy())  # row positions are write order
    return table.take(pa.array(keep))


def dedupe_windows(windows: pa.Table) -> pa.Table:
    """All windows of a video from its latest shard, then one row per (video_id, window_idx)."""
    if windows.num_rows == 0:
        return windows
    latest = windows.select(["video_id", _SHARD]).group_by("video_id", use_threads=False).aggregate([(_SHARD, "max")])
    latest_shard = dict(zip(latest["video_id"].to_pylist(), latest[f"{_SHARD}_max"].to_pylist()))
    video_ids = windows["video_id"].to_pylist()
    row_shard = windows[_SHARD].to_numpy()
    keep = np.array([latest_shard[v] for v in video_ids], dtype=np.int64) == row_shard
    joined = windows if keep.all() else windows.filter(pa.array(keep))  # filter copies every column
    return dedupe_last(joined, TABLE_KEYS[WINDOWS])


# ---- reading the run ------------------------------------------------------------------------


def _staged(store: FeatureStore, run_id: str, name: str) -> tuple[pa.Table | None, int]:
    batches = shards.read_shards(store.uri, run_id, name, fs_options=store.fs_options)
    schema = store.schema(name)
    batches = [conform(b, schema, table=name) for b in batches if b.num_rows]
    ordered = _with_order(batches)
    return ordered, (ordered.num_rows if ordered is not None else 0)


def _filter_isin(table: pa.Table, column: str, values: set, keep: bool) -> pa.Table:
    """Rows whose `column` is in `values` (keep=True) or not in it (keep=False)."""
    if table.num_rows == 0:
        return table
    if not values:
        return table if not keep else table.slice(0, 0)
    value_set = pa.array(sorted(values), type=table.schema.field(column).type)
    mask = pc.is_in(table.column(column), value_set=value_set)
    return table.filter(mask if keep else pc.invert(mask))


# ---- commit ---------------------------------------------------------------------------------


def commit_run(store: FeatureStore, run_id: str, config: CommitConfig = CommitConfig()) -> CommitResult:
    """Commit every shard staged by `run_id` (see module doc); returns what was written."""
    shards.check_run_id(run_id)
    result = CommitResult(run_id=run_id)
    for name in (WINDOWS, FAILURES, VIDEOS, ANSWERS):
        result.tables[name] = TableWrite(table=name, version_before=store.table_version(name))
        result.tables[name].version_after = result.tables[name].version_before

    videos, n_videos = _staged(store, run_id, VIDEOS)
    windows, n_windows = _staged(store, run_id, WINDOWS) if store.shape is not None else (None, 0)
    failures, n_failures = _staged(store, run_id, FAILURES)
    answers, n_answers = _staged(store, run_id, ANSWERS)
    if windows is None and shards.list_shards(store.uri, run_id, WINDOWS, fs_options=store.fs_options):
        raise StoreSchemaError(store.uri, "windows shards staged but the store has no D; open it with dim=D")
    result.tables[VIDEOS].rows_staged = n_videos
    result.tables[WINDOWS].rows_staged = n_windows
    result.tables[FAILURES].rows_staged = n_failures
    result.tables[ANSWERS].rows_staged = n_answers

    videos = dedupe_last(videos, TABLE_KEYS[VIDEOS]) if videos is not None else None
    windows = dedupe_windows(windows) if windows is not None else None
    failures = dedupe_last(failures, TABLE_KEYS[FAILURES]) if failures is not None else None
    answers = dedupe_last(answers, TABLE_KEYS[ANSWERS]) if answers is not None else None
    if windows is not None:
        check_window_tokens(windows, store.shape)

    stored = store.video_states()  # video_id -> (uri, model_version, status)

    # -- drop unchanged videos and failed attempts that would downgrade an indexed video
    if videos is not None and videos.num_rows:
        drop: set[str] = set()
        for vid, uri, mv, status in zip(
            videos["video_id"].to_pylist(), videos["uri"].to_pylist(),
            videos["model_version"].to_pylist(), videos["status"].to_pylist(),
        ):
            old = stored.get(vid)
            if old is None:
                continue
            unchanged = config.skip_unchanged_videos and old == (uri, mv, status)
            downgrade = status == STATUS_FAILED and old[1] == mv and old[2] == STATUS_INDEXED
            if unchanged or downgrade:
                drop.add(vid)
        if drop:
            result.skipped_video_ids = sorted(drop)
            videos = _filter_isin(videos, "video_id", drop, keep=False)
            if windows is not None:
                windows = _filter_isin(windows, "video_id", drop, keep=False)

    # -- changed files: stored rows of the same uri under another video_id are replaced
    incoming_ids = set(videos["video_id"].to_pylist()) if videos is not None else set()
    incoming_uris = set(videos["uri"].to_pylist()) if videos is not None else set()
    old_ids = sorted(vid for vid, (uri, _, _) in stored.items() if uri in incoming_uris and vid not in incoming_ids)
    result.replaced_video_ids = old_ids

    # -- windows: one write; stale windows of rewritten and replaced videos are deleted in it
    window_ids = set(windows["video_id"].to_pylist()) if windows is not None else set()
    rewrite_ids = sorted(window_ids | incoming_ids | set(old_ids))
    if store.shape is not None:
        _write_windows(store, _drop_helpers(windows) if windows is not None else None, rewrite_ids, result.tables[WINDOWS])

    # -- failures
    if failures is not None and failures.num_rows and config.skip_known_failures:
        failures = _drop_known_failures(store, failures)
    _merge(store, FAILURES, _drop_helpers(failures) if failures is not None else None, None, result.tables[FAILURES])

    # -- answers (rarely staged; QA usually upserts directly)
    _merge(store, ANSWERS, _drop_helpers(answers) if answers is not None else None, None, result.tables[ANSWERS])

    # -- videos last: a listed video always has its windows committed
    _merge(
        store, VIDEOS, _drop_helpers(videos) if videos is not None else None,
        sql_in("video_id", old_ids) if old_ids else None, result.tables[VIDEOS],
    )

    shards.discard_run(store.uri, run_id, fs_options=store.fs_options)
    if config.discard_stale_runs_older_than_s is not None:
        result.discarded_runs = shards.discard_stale_runs(
            store.uri, keep=(run_id,), older_than_s=config.discard_stale_runs_older_than_s, fs_options=store.fs_options
        )
    if config.optimize_after:
        from favor_ops.store.maintenance import MaintenanceConfig, compact

        written = [name for name, write in result.tables.items() if write.written]
        result.compacted_tables = compact(store, written, MaintenanceConfig(keep_versions=config.keep_versions))
    return result


def _merge(
    store: FeatureStore, name: str, batch: pa.Table | None, delete_where: str | None, write: TableWrite
) -> None:
    """One merge_insert on the table keys (update all, insert all, optional delete of unmatched
    target rows matching `delete_where`); nothing at all when the batch is empty."""
    write.rows_after_dedupe = batch.num_rows if batch is not None else 0
    if batch is None or batch.num_rows == 0:
        return
    table = store.table(name)
    builder = table.merge_insert(list(TABLE_KEYS[name])).when_matched_update_all().when_not_matched_insert_all()
    if delete_where:
        builder = builder.when_not_matched_by_source_delete(delete_where)
    merged = builder.execute(batch)
    write.rows_written = merged.num_inserted_rows + merged.num_updated_rows
    write.rows_deleted = merged.num_deleted_rows
    write.version_after = merged.version


def _write_windows(store: FeatureStore, windows: pa.Table | None, rewrite_ids: list[str], write: TableWrite) -> None:
    if windows is not None and windows.num_rows:
        where = sql_in("video_id", rewrite_ids) if rewrite_ids else None
        _merge(store, WINDOWS, windows, where, write)
        return
    write.rows_after_dedupe = 0
    if not rewrite_ids or not store.has_table(WINDOWS):
        return
    table = store.table(WINDOWS)
    where = sql_in("video_id", rewrite_ids)
    stale = table.count_rows(where)
    if stale == 0:  # a delete that matches nothing would still add a version
        return
    table.delete(where)
    write.rows_deleted = stale
    write.version_after = table.version


def _drop_known_failures(store: FeatureStore, failures: pa.Table) -> pa.Table:
    if not store.has_table(FAILURES) or store.table(FAILURES).count_rows() == 0:
        return failures
    uris = sorted(set(failures["uri"].to_pylist()))
    known_rows = (
        store.table(FAILURES).search().where(sql_in("uri", uris))
        .select(["uri", "video_id", "stage", "error_type", "message"]).limit(None).to_arrow()
    )
    known = set(zip(*(known_rows[c].to_pylist() for c in ("uri", "video_id", "stage", "error_type", "message"))))
    mask = [
        key not in known
        for key in zip(*(failures[c].to_pylist() for c in ("uri", "video_id", "stage", "error_type", "message")))
    ]
    return failures.filter(pa.array(mask, type=pa.bool_()))
