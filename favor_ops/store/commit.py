"""One commit per run: staged shards -> merge_insert into the Lance tables.

Steps of `commit_run(store, run_id)`:
1. read the run's `videos`, `failures` and `answers` shards (one small row per video or failure) and
   cast them to the table schemas; of the `windows` shards read only (video_id, window_idx) at first;
2. deduplicate keys inside the run, last writer wins: a later shard beats an earlier one and,
   inside a shard, a later row beats an earlier one. The windows written are those of the run's
   `videos` rows with status indexed, windows 0 .. n_windows-1 of each, gathered from every shard
   that holds them (the job stages each chunk's windows where it was encoded). An indexed video
   whose windows are not all staged is not listed: it becomes a `commit` failure and the next run
   redoes it;
3. a staged `videos` row with status removed (the job's catalog found the video's content gone from its
   uri) deletes that video's stored rows, like a changed file's; it is never stored itself;
   drop what would not change anything: a `videos` row equal to the stored one in
   (uri, model_version, status) and its windows; a failed attempt never replaces a video
   already indexed with the same model version; a failure equal to one already recorded for the
   same (uri, video_id, stage, error_type, message) (configurable);
4. write `windows` first, in batches of whole videos of about `max_merge_bytes` each (one Lance
   version per batch, so the commit's memory does not grow with the run; runs of up to ~900
   windows of D=128 take one; a table created before a nullable column first gets it added, null in
   its stored rows: FeatureStore.add_missing_columns), then `failures`, then `videos` last, once each, so a crash in
   between leaves a video un-listed and the next run redoes it. A changed file (same uri, new
   video_id) replaces its rows inside the same merges: `when_not_matched_by_source_delete`
   removes the old video_id's windows and videos row;
5. remove the run's staging directory; optionally drop stale staging dirs of dead runs and
   compact the written tables.

Nothing is written for an empty or unchanged batch: no merge_insert with empty data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

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
    STATUS_REMOVED,
    TABLE_KEYS,
    StoreSchemaError,
    VIDEOS,
    WINDOWS,
    check_window_tokens,
    conform,
    utc_now,
)

@dataclass(frozen=True)
class CommitConfig:
    skip_unchanged_videos: bool = True  # drop staged videos identical to stored ones (and their windows)
    skip_known_failures: bool = True  # do not record again a failure already recorded by an earlier run
    optimize_after: bool = True  # compact the written tables after the commit
    keep_versions: int | None = 10  # versions kept when compacting (None: LanceDB default age)
    discard_stale_runs_older_than_s: float | None = 24 * 3600.0  # None: leave dead runs' staging dirs
    # Windows per merge_insert, by Arrow size: the commit holds about this much of the run at a time (plus one
    # shard), so its memory does not grow with the run. A run above it writes `windows` in several versions.
    max_merge_bytes: int = 16 << 20


@dataclass
class TableWrite:
    table: str
    rows_staged: int = 0  # rows read from shards
    rows_after_dedupe: int = 0
    rows_written: int = 0  # inserted + updated
    rows_deleted: int = 0
    merges: int = 0  # merge_insert calls (windows: one per batch)
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


# ---- reading the run ------------------------------------------------------------------------


def _staged(store: FeatureStore, run_id: str, name: str) -> tuple[pa.Table | None, int]:
    """All staged rows of a small table (one row per video or failure), in write order."""
    batches = shards.read_shards(store.uri, run_id, name, fs_options=store.fs_options)
    schema = store.schema(name)
    batches = [conform(b, schema, table=name) for b in batches if b.num_rows]
    if not batches:
        return None, 0
    table = pa.concat_tables(batches)
    return table, table.num_rows


@dataclass
class StagedWindows:
    """Where a run's windows are, without holding them: shard paths and, per video, its last shard and the
    window indexes staged for it."""

    paths: list[str]  # windows shards, oldest first
    last_shard: dict[str, int]  # video_id -> ordinal (in `paths`) of the newest shard holding that video
    window_idx: dict[str, set[int]]  # video_id -> window indexes staged (duplicates once)
    rows: int  # rows staged, duplicates included


def scan_staged_windows(store: FeatureStore, run_id: str) -> StagedWindows:
    """One pass over the run's windows shards reading only (video_id, window_idx): memory-mapped for a local
    store, so the tokens are not read here."""
    paths = shards.list_shards(store.uri, run_id, WINDOWS, fs_options=store.fs_options)
    last: dict[str, int] = {}
    window_idx: dict[str, set[int]] = {}
    rows = 0
    for ordinal, path in enumerate(paths):
        keys = shards.read_shard_columns(path, ["video_id", "window_idx"], db_uri=store.uri,
                                         fs_options=store.fs_options)
        rows += keys.num_rows
        for video_id, idx in zip(keys.column("video_id").to_pylist(), keys.column("window_idx").to_pylist()):
            last[video_id] = ordinal
            window_idx.setdefault(video_id, set()).add(idx)
    return StagedWindows(paths=paths, last_shard=last, window_idx=window_idx, rows=rows)


def window_batches(
    store: FeatureStore, staged: StagedWindows, n_windows: dict[str, int], max_batch_bytes: int
) -> Iterator[pa.Table]:
    """The run's windows to write, deduplicated, as tables of about `max_batch_bytes`, never a video split
    across two (each batch's merge replaces its videos' windows whole).

    Only videos in `n_windows` (video_id -> the window count of its committed `videos` row) are written, and
    of each only windows 0 .. n-1. A video's windows may lie in several shards (the job stages each encoded
    chunk where it was encoded); they are gathered in shard order and the last row of a (video_id,
    window_idx) wins. A video is complete once its last shard is read; rows of videos still open wait for
    their next shard, so a batch holds about `max_batch_bytes`, plus the rows of videos open across shards."""
    schema = store.schema(WINDOWS)
    closed: list[pa.Table] = []  # rows of videos whose last shard has been read
    closed_bytes = 0
    open_rows: list[pa.Table] = []  # rows of videos with shards still to come
    for ordinal, path in enumerate(staged.paths):
        shard = conform(shards.read_shard(path, db_uri=store.uri, fs_options=store.fs_options), schema, table=WINDOWS)
        video_ids = shard.column("video_id").to_pylist()
        window_idx = shard.column("window_idx").to_pylist()
        keep = np.fromiter((v in n_windows and i < n_windows[v] for v, i in zip(video_ids, window_idx)),
                           dtype=bool, count=len(video_ids))
        if not keep.all():
            shard = shard.filter(pa.array(keep))  # filter copies every column: only when something goes
        if shard.num_rows == 0:
            continue
        rows = pa.concat_tables(open_rows + [shard]) if open_rows else shard
        ending = np.fromiter((staged.last_shard[v] == ordinal for v in rows.column("video_id").to_pylist()),
                             dtype=bool, count=rows.num_rows)
        if ending.all():
            done, open_rows = rows, []
        else:
            done, open_rows = rows.filter(pa.array(ending)), [rows.filter(pa.array(~ending))]
        if done.num_rows:
            closed.append(done)
            closed_bytes += done.nbytes
        if closed_bytes >= max_batch_bytes:
            yield dedupe_last(pa.concat_tables(closed), TABLE_KEYS[WINDOWS])
            closed, closed_bytes = [], 0
    if closed:
        yield dedupe_last(pa.concat_tables(closed), TABLE_KEYS[WINDOWS])


def incomplete_videos(staged: StagedWindows, n_windows: dict[str, int]) -> dict[str, str]:
    """video_id -> what is missing, for videos whose staged windows do not cover 0 .. n-1."""
    missing = {}
    for video_id, n in n_windows.items():
        have = sum(1 for i in staged.window_idx.get(video_id, ()) if 0 <= i < n)
        if have != n:
            missing[video_id] = f"{have} of {n} windows staged"
    return missing


def _indexed_window_counts(videos: pa.Table | None) -> dict[str, int]:
    """video_id -> n_windows of the run's `videos` rows with status indexed (the windows the commit writes)."""
    if videos is None:
        return {}
    return {
        vid: n
        for vid, n, status in zip(videos["video_id"].to_pylist(), videos["n_windows"].to_pylist(),
                                  videos["status"].to_pylist())
        if status == STATUS_INDEXED and n
    }


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
    failures, n_failures = _staged(store, run_id, FAILURES)
    answers, n_answers = _staged(store, run_id, ANSWERS)
    if store.shape is None:
        if shards.list_shards(store.uri, run_id, WINDOWS, fs_options=store.fs_options):
            raise StoreSchemaError(store.uri, "windows shards staged but the store has no D; open it with dim=D")
        staged_windows = StagedWindows(paths=[], last_shard={}, window_idx={}, rows=0)
    else:
        staged_windows = scan_staged_windows(store, run_id)
    result.tables[VIDEOS].rows_staged = n_videos
    result.tables[WINDOWS].rows_staged = staged_windows.rows
    result.tables[FAILURES].rows_staged = n_failures
    result.tables[ANSWERS].rows_staged = n_answers

    videos = dedupe_last(videos, TABLE_KEYS[VIDEOS]) if videos is not None else None
    failures = dedupe_last(failures, TABLE_KEYS[FAILURES]) if failures is not None else None
    answers = dedupe_last(answers, TABLE_KEYS[ANSWERS]) if answers is not None else None

    stored = store.video_states()  # video_id -> (uri, model_version, status)

    # -- removal rows (status removed: the video's content is gone from its uri) delete the stored video, never
    # stored themselves; a video that the same run also stages for real is not removed
    removed: set[str] = set()
    if videos is not None and videos.num_rows:
        statuses = videos["status"].to_pylist()
        removed = {vid for vid, status in zip(videos["video_id"].to_pylist(), statuses) if status == STATUS_REMOVED}
        if removed:
            videos = videos.filter(pc.not_equal(videos["status"], STATUS_REMOVED))
            removed = {vid for vid in removed if vid in stored} - set(videos["video_id"].to_pylist())

    # -- drop unchanged videos and failed attempts that would downgrade an indexed video
    drop: set[str] = set()
    if videos is not None and videos.num_rows:
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

    # -- indexed videos whose windows are not all staged are not listed: a failure row, and the next run redoes them
    n_windows = _indexed_window_counts(videos)
    missing = incomplete_videos(staged_windows, n_windows)
    if missing:
        uris = dict(zip(videos["video_id"].to_pylist(), videos["uri"].to_pylist()))
        videos = _filter_isin(videos, "video_id", set(missing), keep=False)
        for video_id in missing:
            del n_windows[video_id]
        lost = [
            {"uri": uris[vid], "video_id": vid, "stage": "commit", "error_type": "WindowCountMismatch",
             "message": message, "run_id": run_id, "at": utc_now()}
            for vid, message in sorted(missing.items())
        ]
        lost_table = pa.Table.from_pylist(lost, schema=store.schema(FAILURES))
        failures = lost_table if failures is None else pa.concat_tables([failures, lost_table])

    # -- changed files: stored rows of the same uri under another video_id are replaced
    incoming_ids = set(videos["video_id"].to_pylist()) if videos is not None else set()
    incoming_uris = set(videos["uri"].to_pylist()) if videos is not None else set()
    old_ids = sorted(removed | {vid for vid, (uri, _, _) in stored.items() if uri in incoming_uris
                                and vid not in incoming_ids})
    result.replaced_video_ids = old_ids

    # -- windows: batches of whole videos; each batch's merge deletes the stale windows of its videos, the
    # last one also those of rewritten videos without windows and of replaced files
    rewrite_ids = set(n_windows) | incoming_ids | set(old_ids)
    if store.shape is not None:
        batches = window_batches(store, staged_windows, n_windows, config.max_merge_bytes)
        _write_windows(store, batches, rewrite_ids, result.tables[WINDOWS])

    # -- failures
    if failures is not None and failures.num_rows and config.skip_known_failures:
        failures = _drop_known_failures(store, failures)
    _merge(store, FAILURES, failures, None, result.tables[FAILURES])

    # -- answers (rarely staged; QA usually upserts directly)
    _merge(store, ANSWERS, answers, None, result.tables[ANSWERS])

    # -- videos last: a listed video always has its windows committed
    _merge(store, VIDEOS, videos, sql_in("video_id", old_ids) if old_ids else None, result.tables[VIDEOS])

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
    target rows matching `delete_where`). An empty batch merges nothing: only the rows matching
    `delete_where` are deleted (no version at all when there are none)."""
    write.rows_after_dedupe = batch.num_rows if batch is not None else 0
    if batch is None or batch.num_rows == 0:
        if delete_where:
            _delete(store, name, delete_where, write)
        return
    store.add_missing_columns(name)  # a table created before a nullable column: add it (null in stored rows)
    table = store.table(name)
    builder = table.merge_insert(list(TABLE_KEYS[name])).when_matched_update_all().when_not_matched_insert_all()
    if delete_where:
        builder = builder.when_not_matched_by_source_delete(delete_where)
    merged = builder.execute(batch)
    write.rows_written = merged.num_inserted_rows + merged.num_updated_rows
    write.rows_deleted = merged.num_deleted_rows
    write.version_after = merged.version
    write.merges += 1


def _delete(store: FeatureStore, name: str, where: str, write: TableWrite) -> None:
    """Delete the rows matching `where`; no new version when none matches."""
    if not store.has_table(name):
        return
    table = store.table(name)
    stale = table.count_rows(where)
    if stale == 0:  # a delete that matches nothing would still add a version
        return
    table.delete(where)
    write.rows_deleted += stale
    write.version_after = table.version


def _write_windows(store: FeatureStore, batches: Iterator[pa.Table], rewrite_ids: set[str], write: TableWrite) -> None:
    """One merge per batch (deleting the stale windows of the batch's videos; the last batch also those of
    `rewrite_ids` no batch holds); without any batch, an empty merge: a delete of the windows of `rewrite_ids`."""
    batch = next(batches, None)
    covered: set[str] = set()
    while batch is not None:
        check_window_tokens(batch, store.shape)
        following = next(batches, None)
        batch_ids = set(batch.column("video_id").to_pylist())
        covered |= batch_ids
        delete_ids = batch_ids if following is not None else batch_ids | (rewrite_ids - covered)
        part = TableWrite(table=WINDOWS)
        _merge(store, WINDOWS, batch, sql_in("video_id", sorted(delete_ids)), part)
        write.rows_after_dedupe += part.rows_after_dedupe
        write.rows_written += part.rows_written
        write.rows_deleted += part.rows_deleted
        write.version_after = part.version_after
        write.merges += part.merges
        batch = following
    if not covered and rewrite_ids:
        _merge(store, WINDOWS, None, sql_in("video_id", sorted(rewrite_ids)), write)


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
