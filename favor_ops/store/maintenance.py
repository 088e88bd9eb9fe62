"""Indexes, compaction and version cleanup of the store.

- ANN indexes on `windows.pooled` and the multivector `windows.tokens`, both cosine (set
  explicitly: multivector search supports cosine only and an index trained with another metric
  silently gives wrong results). Built only once the table holds `ann_min_rows` windows; below
  that, exact (flat) search is fast and exact. Built once, then kept up to date by
  `table.optimize()`, which adds new rows to existing indexes; `rebuild=True` retrains.
- Full-text (BM25) index on `windows.transcript`.
- Compaction: `table.optimize()` merges small fragments, refreshes indexes and prunes old
  versions, keeping at least `keep_versions` versions.

Every step is skipped when it has nothing to do, so maintenance on an unchanged store leaves all
table versions as they are.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Iterable

from lancedb.index import FTS, IvfFlat, IvfPq

from favor_ops.errors import StageError
from favor_ops.store.feature_store import COSINE, FeatureStore
from favor_ops.store.schema import POOLED_COLUMN, TABLE_NAMES, TOKENS_COLUMN, TRANSCRIPT_COLUMN, WINDOWS


@dataclass(frozen=True)
class MaintenanceConfig:
    ann_min_rows: int = 10_000  # windows rows before ANN indexes are built (exact search below)
    # Above this many windows the `tokens` multivector index (n_query_tokens IVF entries per window) is not built;
    # MaxSim search then runs as pooled ANN + exact re-rank (favor_ops.retrieval.search). None: always build it.
    tokens_ann_max_rows: int | None = 500_000
    rows_per_partition: int = 4096  # IVF partitions = ceil(rows / rows_per_partition)
    ann_index_type: str = "IVF_PQ"  # "IVF_PQ" (compressed) or "IVF_FLAT" (exact vectors)
    pq_num_sub_vectors: int | None = None  # None: LanceDB default (D/16, else D/8, else 1)
    fts: bool = True  # full-text index on windows.transcript
    fts_stem: bool = True
    fts_remove_stop_words: bool = True
    keep_versions: int | None = 10  # versions kept by cleanup (None: LanceDB default, older than 7 days)
    version_cleanup_margin_s: float = 1.0  # versions this close to the cutoff are kept too


@dataclass
class MaintenanceReport:
    indexes_built: list[str] = field(default_factory=list)  # index names created or rebuilt
    compacted_tables: list[str] = field(default_factory=list)  # tables whose version moved when compacting
    versions_before: dict[str, int] = field(default_factory=dict)
    versions_after: dict[str, int] = field(default_factory=dict)


def _indexed_columns(table) -> dict[str, str]:
    """column -> index type of the existing indexes."""
    out: dict[str, str] = {}
    for index in table.list_indices():
        for column in index.columns:
            out[column] = index.index_type
    return out


def _ann_config(cfg: MaintenanceConfig, n_vectors: int, dim: int):
    """IVF partitions count indexed vectors (a multivector row holds n_query_tokens of them); PQ uses D/4
    sub-vectors by default: LanceDB's coarser default cannot separate near-tied query tokens (recall 0.47
    vs 0.98 at 100k windows in `favor bench search`)."""
    num_partitions = max(1, math.ceil(n_vectors / cfg.rows_per_partition))
    if cfg.ann_index_type == "IVF_FLAT":
        return IvfFlat(distance_type=COSINE, num_partitions=num_partitions)
    if cfg.ann_index_type == "IVF_PQ":
        sub_vectors = cfg.pq_num_sub_vectors or (dim // 4 if dim % 4 == 0 else None)
        return IvfPq(distance_type=COSINE, num_partitions=num_partitions, num_sub_vectors=sub_vectors)
    raise ValueError(f"ann_index_type must be IVF_PQ or IVF_FLAT, got {cfg.ann_index_type!r}")


def ensure_indexes(store: FeatureStore, cfg: MaintenanceConfig = MaintenanceConfig(), *, rebuild: bool = False) -> list[str]:
    """Create missing indexes on `windows` (ANN when large enough, FTS when it has rows).

    Returns the names of the indexes created. Existing indexes are left to `optimize()`
    unless `rebuild` (retrain ANN indexes on the current data).
    """
    if not store.has_table(WINDOWS):
        return []
    table = store.table(WINDOWS)
    n_rows = table.count_rows()
    if n_rows == 0:
        return []
    existing = _indexed_columns(table)
    built = []
    if n_rows >= cfg.ann_min_rows:
        for column in (POOLED_COLUMN, TOKENS_COLUMN):
            if column in existing and not rebuild:
                continue
            if column == TOKENS_COLUMN and cfg.tokens_ann_max_rows is not None and n_rows > cfg.tokens_ann_max_rows:
                continue
            # Cosine is set explicitly for both: the multivector index and query require it.
            n_vectors = n_rows * (store.shape.n_query_tokens if column == TOKENS_COLUMN else 1)
            table.create_index(column, config=_ann_config(cfg, n_vectors, store.shape.dim), replace=True,
                               name=f"{column}_idx")
            built.append(f"{column}_idx")
    if cfg.fts and TRANSCRIPT_COLUMN not in existing:
        fts = FTS(stem=cfg.fts_stem, remove_stop_words=cfg.fts_remove_stop_words, with_position=False)
        table.create_index(TRANSCRIPT_COLUMN, config=fts, replace=True, name=f"{TRANSCRIPT_COLUMN}_idx")
        built.append(f"{TRANSCRIPT_COLUMN}_idx")
    return built


def _cleanup_older_than(table, keep_versions: int | None, margin_s: float) -> dt.timedelta | None:
    """Age that prunes all but the newest `keep_versions` versions (None: LanceDB default)."""
    if keep_versions is None:
        return None
    if keep_versions <= 1:
        return dt.timedelta(0)
    versions = sorted(table.list_versions(), key=lambda v: v["version"])
    # list_versions timestamps are naive local time (datetime.fromtimestamp), so compare with now().
    if len(versions) <= keep_versions:
        cutoff = versions[0]["timestamp"]
    else:
        cutoff = versions[-keep_versions]["timestamp"]
    age = dt.datetime.now() - cutoff + dt.timedelta(seconds=margin_s)
    return max(age, dt.timedelta(0))


def compact(
    store: FeatureStore, table_names: Iterable[str], cfg: MaintenanceConfig = MaintenanceConfig()
) -> list[str]:
    """`optimize()` each named table (compaction + index refresh + version cleanup).

    Returns the tables whose version moved. Call it only for tables that were written: on an
    unchanged table optimize has nothing to do and leaves the version as it is.
    """
    moved = []
    for name in table_names:
        if name not in TABLE_NAMES or not store.has_table(name):
            continue
        table = store.table(name)
        before = table.version
        older_than = _cleanup_older_than(table, cfg.keep_versions, cfg.version_cleanup_margin_s)
        if older_than is None:
            table.optimize()
        else:
            table.optimize(cleanup_older_than=older_than)
        if table.version != before:
            moved.append(name)
    return moved


def run_maintenance(
    store: FeatureStore,
    cfg: MaintenanceConfig = MaintenanceConfig(),
    *,
    changed_tables: Iterable[str] | None = None,
    rebuild: bool = False,
) -> MaintenanceReport:
    """Indexes then compaction. `changed_tables`: tables written since the last maintenance
    (e.g. from CommitResult); an empty list compacts nothing; None compacts every table."""
    report = MaintenanceReport(versions_before=store.table_versions())
    report.indexes_built = ensure_indexes(store, cfg, rebuild=rebuild)
    names = list(TABLE_NAMES) if changed_tables is None else list(changed_tables)
    report.compacted_tables = compact(store, names, cfg)
    report.versions_after = store.table_versions()
    return report


# ---- `favor store compact`: compaction + pruning to the newest N versions -----------------------------

NO_CLEANUP = dt.timedelta(days=365 * 100)  # optimize() without pruning (None would prune at LanceDB's 7 days)
MIN_VERSION_GAP_S = 0.2  # versions committed closer than this are kept or pruned together
CLEANUP_MARGIN_S = 1.0  # the pruning cutoff sits at most this far before the oldest kept version


@dataclass
class TableCompaction:
    """What `compact_store` did to one table."""

    table: str
    versions_before: int  # versions listed before (reachable by time travel)
    versions_after: int
    latest_before: int  # latest version number before
    latest_after: int  # compaction commits new versions, so this may be larger
    kept_versions: list[int] = field(default_factory=list)  # version numbers listed after
    old_versions_removed: int = 0
    bytes_freed: int = 0
    fragments_removed: int = 0
    fragments_added: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class CompactionReport:
    uri: str
    keep_versions: int
    tables: list[TableCompaction] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        return sum(t.bytes_freed for t in self.tables)

    def as_dict(self) -> dict:
        return {"db": self.uri, "keep_versions": self.keep_versions, "bytes_freed": self.bytes_freed,
                "tables": [t.as_dict() for t in self.tables]}  # fmt: skip


def check_keep_versions(keep_versions) -> int:
    if isinstance(keep_versions, bool) or not isinstance(keep_versions, int) or keep_versions < 1:
        raise ValueError(f"--keep-versions must be a whole number >= 1 (the latest version is always kept), "
                         f"got {keep_versions!r}")  # fmt: skip
    return keep_versions


def cleanup_age_keeping(versions: list[dict], keep_versions: int, now: dt.datetime, *,
                        margin_s: float = CLEANUP_MARGIN_S, min_gap_s: float = MIN_VERSION_GAP_S) -> dt.timedelta | None:
    """`cleanup_older_than` that prunes every version but the newest `keep_versions` (None: prune nothing).

    LanceDB prunes by age, measured from its own clock a moment after ours, so the cutoff is put between
    the oldest kept version and the newest pruned one: `margin` before the kept one, at most half the gap.
    Versions closer together than `min_gap_s` cannot be told apart safely: the older one is then kept too
    (never fewer than `keep_versions` versions, sometimes a few more). keep_versions == 1 is exact (0 s:
    LanceDB never removes the latest version). `versions`: list_versions() rows (timestamps naive local).
    """
    keep_versions = check_keep_versions(keep_versions)
    ordered = sorted(versions, key=lambda v: v["version"])
    if len(ordered) <= keep_versions:
        return None
    if keep_versions == 1:
        return dt.timedelta(0)
    oldest_kept = len(ordered) - keep_versions
    while oldest_kept > 0:
        gap = (ordered[oldest_kept]["timestamp"] - ordered[oldest_kept - 1]["timestamp"]).total_seconds()
        if gap >= min_gap_s:
            break
        oldest_kept -= 1
    if oldest_kept == 0:
        return None
    margin = dt.timedelta(seconds=min(margin_s, gap / 2))
    age = now - ordered[oldest_kept]["timestamp"] + margin
    return age if age > dt.timedelta(0) else None  # a clock set back: prune nothing rather than too much


class PruneError(StageError):
    """Pruning removed a version it was asked to keep (the clock moved more than the safety margin)."""

    stage = "store"


async def _compact_table(db, name: str, keep_versions: int) -> TableCompaction:
    import time
    import warnings

    table = await db.open_table(name)
    before = await table.list_versions()
    latest_before = await table.version()
    # 1. compaction + index refresh, nothing pruned yet (it commits the versions it creates)
    stats = await table.optimize(cleanup_older_than=NO_CLEANUP)
    # 2. the same call again has nothing to do: its duration bounds how late LanceDB reads its clock
    #    when pruning, which sets the safety margin around the cutoff
    started = time.monotonic()
    await table.optimize(cleanup_older_than=NO_CLEANUP)
    latency_s = time.monotonic() - started
    await table.checkout_latest()
    # 3. prune all but the newest N, counted after the versions compaction added
    versions = await table.list_versions()
    listed = sorted(v["version"] for v in versions)
    older_than = cleanup_age_keeping(versions, keep_versions, dt.datetime.now(),
                                     margin_s=max(CLEANUP_MARGIN_S, 2 * latency_s),
                                     min_gap_s=max(MIN_VERSION_GAP_S, 4 * latency_s))  # fmt: skip
    removed, freed = 0, 0
    if older_than is not None:
        with warnings.catch_warnings():  # "cleanup_older_than=0 removes every version except the latest": asked for
            warnings.simplefilter("ignore", UserWarning)
            pruned = await table.optimize(cleanup_older_than=older_than)
        removed, freed = pruned.prune.old_versions_removed, pruned.prune.bytes_removed
    await table.checkout_latest()
    after = sorted(v["version"] for v in await table.list_versions())
    lost = sorted(set(listed[-keep_versions:]) - set(after))
    if lost:
        raise PruneError(name, f"pruning removed version(s) {lost} that were to be kept")
    return TableCompaction(
        table=name, versions_before=len(before), versions_after=len(after), latest_before=latest_before,
        latest_after=await table.version(), kept_versions=after, old_versions_removed=removed,
        bytes_freed=freed + stats.prune.bytes_removed, fragments_removed=stats.compaction.fragments_removed,
        fragments_added=stats.compaction.fragments_added)  # fmt: skip


async def _compact_all(uri: str, storage_options: dict | None, keep_versions: int) -> list[TableCompaction]:
    import lancedb

    db = await lancedb.connect_async(uri, storage_options=storage_options or None)
    names: list[str] = []
    page_token = None
    while True:
        response = await db.list_tables(page_token=page_token)
        names.extend(response.tables)
        page_token = getattr(response, "page_token", None)
        if not page_token:
            break
    ordered = [n for n in TABLE_NAMES if n in names] + sorted(n for n in names if n not in TABLE_NAMES)
    return [await _compact_table(db, name, keep_versions) for name in ordered]


def compact_store(store: FeatureStore | str, keep_versions: int) -> CompactionReport:
    """Compact every table of the store (merge small fragments, fold new rows into the indexes), then prune
    Lance versions so that only the newest `keep_versions` stay reachable (>= 1; the latest always stays).

    Pruning deletes the files of older versions: a reader still pinned to one of them (time travel, a
    search started before) fails, so run it when no job is writing. An unchanged, already pruned store is
    left as it is.
    """
    from lancedb.background_loop import LOOP

    keep_versions = check_keep_versions(keep_versions)
    uri = store.uri if isinstance(store, FeatureStore) else str(store)
    options = store.storage_options if isinstance(store, FeatureStore) else None
    tables = LOOP.run(_compact_all(uri, options, keep_versions))
    return CompactionReport(uri=uri, keep_versions=keep_versions, tables=tables)
