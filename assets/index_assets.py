"""The index graph: video_catalog -> window_tokens -> search_index -> qa_answers.

- `video_catalog`  lists the archive, content-hashes the files that arrived in the partition's
                   window and plans them against the store (what is new or changed, what this
                   model version already indexed, what could not be read).
- `window_tokens`  runs the Beam index job (pipelines.index.job.run_index_job) in this process
                   and reports its summary: counts, failures, video-seconds, throughput, versions.
- `search_index`   refreshes the ANN and full-text indexes and compacts the tables that changed
                   since its last materialization (favor_ops.store.maintenance).
- `qa_answers`     answers the questions file of the `qa` resource against the store
                   (favor_ops.qa.batch.run_batch_qa: the `answers` table and a JSONL per run); with no
                   questions file configured it answers nothing and says so.

The data lives in LanceDB, not in Dagster: each asset returns a MaterializeResult with metadata and
the next one depends on it by `deps` (no IO manager, nothing pickled under DAGSTER_HOME).

Partitions: `video_catalog` and `window_tokens` see exactly the run's arrival window (one day, or a
single-run backfill range): the index job lists only files with mtime in the window
(IndexJobConfig.modified_between_s), so a partition indexes its own arrivals and nothing else.
`search_index` and `qa_answers` work on the whole store; their partitions only say which run.
"""


from collections.abc import Mapping, Sequence

import json

import fsspec
from dagster import AssetExecutionContext, AssetKey, Config, Failure, MaterializeResult, MetadataValue, asset

from assets.archive_listing import ArchiveFile, list_archive
from assets.partitions import arrival_window_of, daily_arrivals, single_run_backfill
from assets.resources import ArchiveResource, BeamRunnerResource, LanceStoreResource, ModelResource, QAResource
from favor_ops.store.catalog import (
    CatalogConfig,
    CatalogEntry,
    CatalogFailure,
    UnreadableFileError,
    content_sha256,
    plan_indexing,
    video_id_from_sha256,
)
from favor_ops.store.maintenance import MaintenanceConfig, run_maintenance
from favor_ops.store.schema import STATUS_FAILED, STATUS_INDEXED, TABLE_NAMES

GROUP_NAME = "favor_index"
GPU_TAG_KEY = "favor/gpu"  # run/op tag limited to 1 concurrent run by dagster.yaml (tag_concurrency_limits)
GPU_POOL = "favor_gpu"  # op concurrency pool of the encoding step (`dagster instance concurrency set favor_gpu 1`)
PREVIEW_ROWS = 20  # rows of file/failure lists shown in the UI metadata

# Metadata keys other assets and the checks read back.
META_INDEX_RUN_ID = "index_run_id"
META_TO_INDEX = "to_index"
META_FAILED_FILES = "failed_files"
META_TABLE_VERSIONS = "table_versions"
META_QA_CONFIGURED = "questions_configured"
META_QA_ANSWERED = "answered"
META_QA_SKIPPED = "skipped"
META_QA_FAILED = "failed"


def _markdown_list(lines: Sequence[str], total: int) -> MetadataValue:
    shown = "\n".join(f"- `{line}`" for line in lines[:PREVIEW_ROWS]) or "(none)"
    more = f"\n- ... {total - PREVIEW_ROWS} more" if total > PREVIEW_ROWS else ""
    return MetadataValue.md(shown + more)


def _markdown_table(rows: Sequence[Mapping], columns: Sequence[str]) -> MetadataValue:
    if not rows:
        return MetadataValue.md("(none)")
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)
    body = "\n".join(
        "| " + " | ".join(str(row.get(c, "")).replace("|", "/").replace("\n", " ")[:160] for c in columns) + " |"
        for row in rows[:PREVIEW_ROWS]
    )
    more = f"\n\n... {len(rows) - PREVIEW_ROWS} more" if len(rows) > PREVIEW_ROWS else ""
    return MetadataValue.md(f"{head}\n{body}{more}")


def latest_metadata(context, asset_key: AssetKey) -> dict:
    """Plain values of the latest materialization's metadata of `asset_key` ({} when never materialized)."""
    event = context.instance.get_latest_materialization_event(asset_key)
    if event is None or event.asset_materialization is None:
        return {}
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def hash_archive_files(
    archive_uri: str, files: Sequence[ArchiveFile], cfg: CatalogConfig = CatalogConfig()
) -> tuple[list[CatalogEntry], list[CatalogFailure]]:
    """Content-hash listed files into catalog entries (video_id = sha256 prefix); unreadable ones become failures."""
    fs, _ = fsspec.core.url_to_fs(archive_uri)
    entries, failures = [], []
    for file in files:
        try:
            digest = content_sha256(fs, file.uri, cfg.hash_block_bytes)
        except OSError as err:
            reason = err.strerror or str(err) or type(err).__name__
            failures.append(CatalogFailure.from_error(UnreadableFileError(file.uri, f"cannot read: {reason}")))
            continue
        entries.append(CatalogEntry(file.uri, video_id_from_sha256(digest, cfg), file.size_bytes, file.mtime_s))
    return entries, failures


@asset(
    group_name=GROUP_NAME,
    partitions_def=daily_arrivals,
    backfill_policy=single_run_backfill,
    kinds={"python", "lancedb"},
)
def video_catalog(
    context: AssetExecutionContext, archive: ArchiveResource, store: LanceStoreResource, model: ModelResource
) -> MaterializeResult:
    """Media files that arrived in the partition's day(s): listed, content-hashed and planned against the store."""
    archive.prepare()
    window = arrival_window_of(context)
    files, listing_failures = list_archive(archive.uri, exclude_uris=[store.uri])
    arrived = [f for f in files if window.contains(f.mtime_s)]
    entries, hash_failures = hash_archive_files(archive.uri, arrived)
    model_version = model.model_version()
    states = store.open().video_states()  # video_id -> (uri, model_version, status)
    to_index, skipped = plan_indexing(entries, states, model_version)

    def state_of(entry: CatalogEntry) -> str | None:
        state = states.get(entry.video_id)
        return state[2] if state is not None and state[1] == model_version else None

    already_indexed = [e for e in skipped if state_of(e) == STATUS_INDEXED]
    known_failed = [e for e in skipped if state_of(e) == STATUS_FAILED]
    unreadable = [*listing_failures, *hash_failures]
    context.log.info(
        f"catalog {window.describe()}: {len(arrived)} of {len(files)} files arrived, {len(to_index)} new or changed, "
        f"{len(already_indexed)} already indexed, {len(unreadable)} unreadable"
    )
    return MaterializeResult(
        metadata={
            "archive_uri": archive.uri,
            "arrival_window": window.describe(),
            "files": len(arrived),
            "new_or_changed": len(to_index),
            "already_indexed": len(already_indexed),
            "known_failed": len(known_failed),
            "duplicate_content": len(skipped) - len(already_indexed) - len(known_failed),
            "unreadable": len(unreadable),
            "archive_files_total": len(files),
            "model_version": model_version,
            "new_or_changed_files": _markdown_list([e.uri for e in to_index], len(to_index)),
            "unreadable_files": _markdown_table(
                [{"uri": f.uri, "error_type": f.error_type, "message": f.message} for f in unreadable],
                ["uri", "error_type", "message"],
            ),
        }
    )


@asset(
    group_name=GROUP_NAME,
    deps=[video_catalog],
    partitions_def=daily_arrivals,
    backfill_policy=single_run_backfill,
    op_tags={GPU_TAG_KEY: "true"},
    pool=GPU_POOL,
    kinds={"beam", "pytorch", "lancedb"},
)
def window_tokens(
    context: AssetExecutionContext,
    archive: ArchiveResource,
    store: LanceStoreResource,
    model: ModelResource,
    beam: BeamRunnerResource,
) -> MaterializeResult:
    """Window query tokens in LanceDB `windows` (+ `videos`, `failures`): the Beam index job, run in process."""
    from pipelines.index.job import run_index_job

    archive.prepare()
    window = arrival_window_of(context)
    config = beam.index_job_config(
        source=archive.uri, db=store.uri, model=model.spec, device=model.device, modified_between_s=window.bounds_s
    )
    context.log.info(
        f"index job: {archive.uri} [{window.describe()}] -> {store.uri} with {model.spec} on Beam runner {beam.runner}"
    )
    summary = run_index_job(config, progress=context.log.info)
    throughput = summary.video_seconds / summary.wall_s if summary.wall_s else 0.0
    context.log.info(
        f"index run {summary.run_id}: {summary.indexed} videos indexed, {summary.windows_written} windows, "
        f"{summary.failed} failed, {summary.skipped} skipped, {throughput:.2f} video-s per wall-s"
    )
    return MaterializeResult(
        metadata={
            META_INDEX_RUN_ID: summary.run_id,
            "videos_indexed": summary.indexed,
            "windows_written": summary.windows_written,
            "failures": len(summary.failures),  # `failures` rows of this run
            META_FAILED_FILES: summary.failed,  # distinct files among them
            "skipped": summary.skipped,
            "listed": summary.listed,
            META_TO_INDEX: summary.to_index,
            "video_seconds": MetadataValue.float(float(summary.video_seconds)),
            "throughput_video_s_per_wall_s": MetadataValue.float(float(throughput)),
            "wall_time_s": MetadataValue.float(float(summary.wall_s)),
            META_TABLE_VERSIONS: MetadataValue.json(dict(summary.table_versions)),
            "model_version": summary.model_version,
            "wrote_anything": summary.wrote_anything,
            "exit_code": summary.exit_code,
            "beam_runner": beam.runner,
            "arrival_window": window.describe(),
            "failure_list": _markdown_table(summary.failures, ["uri", "stage", "error_type", "message"]),
        }
    )


class SearchIndexConfig(Config):
    """Index and compaction settings (defaults: favor_ops.store.maintenance.MaintenanceConfig)."""

    ann_min_rows: int = MaintenanceConfig.ann_min_rows  # windows rows before ANN indexes are built
    ann_index_type: str = MaintenanceConfig.ann_index_type  # IVF_PQ | IVF_FLAT
    # above this many windows no `tokens` multivector index: MaxSim search runs as pooled ANN + exact re-rank
    tokens_ann_max_rows: int = MaintenanceConfig.tokens_ann_max_rows
    keep_versions: int = MaintenanceConfig.keep_versions  # table versions kept by cleanup
    rebuild: bool = False  # retrain the ANN indexes on the current data

    def maintenance_config(self) -> MaintenanceConfig:
        return MaintenanceConfig(
            ann_min_rows=self.ann_min_rows, ann_index_type=self.ann_index_type, keep_versions=self.keep_versions,
            tokens_ann_max_rows=self.tokens_ann_max_rows,
        )


def index_descriptions(store) -> list[dict]:
    """Indexes on the store's tables: table, name, type, columns, indexed / unindexed rows."""
    out = []
    for name in TABLE_NAMES:
        if not store.has_table(name):
            continue
        table = store.table(name)
        for index in table.list_indices():
            stats = table.index_stats(index.name)
            out.append(
                {
                    "table": name,
                    "name": index.name,
                    "type": str(index.index_type),
                    "columns": list(index.columns),
                    "indexed_rows": int(stats.num_indexed_rows) if stats else None,
                    "unindexed_rows": int(stats.num_unindexed_rows) if stats else None,
                }
            )
    return out


def changed_tables_since(previous_versions: Mapping[str, int] | None, current: Mapping[str, int]) -> list[str] | None:
    """Tables whose version moved since `previous_versions` (None: no record, treat every table as changed)."""
    if not previous_versions:
        return None
    return [name for name, version in current.items() if previous_versions.get(name) != version]


@asset(
    group_name=GROUP_NAME,
    deps=[window_tokens],
    partitions_def=daily_arrivals,
    backfill_policy=single_run_backfill,
    kinds={"lancedb"},
)
def search_index(
    context: AssetExecutionContext, config: SearchIndexConfig, store: LanceStoreResource
) -> MaterializeResult:
    """ANN (cosine) and full-text indexes on `windows`, refreshed; changed tables compacted."""
    feature_store = store.open()
    previous = latest_metadata(context, context.asset_key).get(META_TABLE_VERSIONS)
    changed = changed_tables_since(previous, feature_store.table_versions())
    maintenance = config.maintenance_config()
    report = run_maintenance(feature_store, maintenance, changed_tables=changed, rebuild=config.rebuild)
    indexes = index_descriptions(feature_store)
    context.log.info(
        f"maintenance: built {report.indexes_built or 'no new indexes'}, compacted {report.compacted_tables or 'nothing'}"
    )
    return MaterializeResult(
        metadata={
            "indexes": MetadataValue.json(indexes),
            "index_names": ", ".join(sorted(i["name"] for i in indexes)) or "(none)",
            "indexes_built": ", ".join(report.indexes_built) or "(none)",
            "ann_min_rows": config.ann_min_rows,  # read back by the indexes_cover_windows check
            "tokens_ann_max_rows": config.tokens_ann_max_rows,  # ditto
            "fts": maintenance.fts,
            "compacted_tables": ", ".join(report.compacted_tables) or "(none)",
            "row_counts": MetadataValue.json(feature_store.counts()),
            META_TABLE_VERSIONS: MetadataValue.json(report.versions_after),
            "versions_before": MetadataValue.json(report.versions_before),
        }
    )


def _json_safe(value) -> object:
    return json.loads(json.dumps(value, default=str))


@asset(
    group_name=GROUP_NAME,
    deps=[search_index],
    partitions_def=daily_arrivals,
    backfill_policy=single_run_backfill,
    op_tags={GPU_TAG_KEY: "true"},
    pool=GPU_POOL,
    kinds={"pytorch", "lancedb"},
)
def qa_answers(context: AssetExecutionContext, store: LanceStoreResource, qa: QAResource) -> MaterializeResult:
    """Answers to the `qa` resource's questions file (LanceDB `answers` + a JSONL per run); none configured: nothing."""
    questions_path = qa.questions()
    if questions_path is None:
        message = "no questions file configured (qa resource questions_path, or FAVOR_QA_QUESTIONS): nothing answered"
        context.log.info(f"qa_answers: {message}")
        return MaterializeResult(metadata={META_QA_CONFIGURED: False, "status": message, "db_uri": store.uri})
    fs, path = fsspec.core.url_to_fs(questions_path)
    if not fs.isfile(path):
        raise Failure(description=f"qa_answers: questions file {questions_path} does not exist or is not a file",
                      metadata={"questions_path": questions_path})
    from favor_ops.qa.batch import run_batch_qa

    out_path = qa.answers_path(context.run.run_id)
    context.log.info(f"qa_answers: {questions_path} against {store.uri} with {qa.model or 'the default QA model'}")
    summary = run_batch_qa(db=store.uri, questions_path=questions_path, out_path=out_path, model=qa.model or None)
    answered, skipped, failed = int(summary.answered), int(summary.skipped), int(summary.failed)
    attempted = answered + failed
    context.log.info(f"qa_answers: {answered} answered, {skipped} skipped, {failed} failed in {summary.elapsed_s:.1f} s")
    return MaterializeResult(
        metadata={
            META_QA_CONFIGURED: True,
            META_QA_ANSWERED: answered,
            META_QA_SKIPPED: skipped,
            META_QA_FAILED: failed,
            "failed_share": MetadataValue.float(failed / attempted if attempted else 0.0),  # of answered + failed
            "elapsed_s": MetadataValue.float(float(summary.elapsed_s)),
            "questions_path": MetadataValue.path(questions_path),
            "answers_path": MetadataValue.path(out_path),
            "model": qa.model or "(default QA checkpoint)",
            "db_uri": store.uri,
            "summary": MetadataValue.json(_json_safe(summary.as_dict())),
        }
    )


index_graph_assets = [video_catalog, window_tokens, search_index, qa_answers]
