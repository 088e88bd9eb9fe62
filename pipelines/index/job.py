"""The index job: archive -> LanceDB window tokens, as one Beam pipeline and one commit.

    in the driver:   open the store, list the archive, read what is already indexed
    on the workers:  the Beam graph of `pipelines.index.pipeline` (hash, plan, decode, encode, assemble,
                     stage Arrow shards in <db>/_staging/<run_id>/)
    in the driver:   commit_run (merges the staged shards) -> indexes + compaction

Every bad input ends as a `failures` row (typed StageErrors are caught where
they happen; anything unexpected goes through Beam's dead-letter output), the
job finishes, and the summary and exit status say how many failed.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field

import apache_beam as beam

from favor_ops.store import schema as store_schema
from favor_ops.store.catalog import CatalogConfig, list_media_files
from favor_ops.store.commit import CommitConfig, commit_run
from favor_ops.store.feature_store import FeatureStore
from favor_ops.store.maintenance import MaintenanceConfig, run_maintenance
from pipelines.index.chunk_encoder import describe_model
from pipelines.index.elements import Failure
from pipelines.index.job_config import IndexJobConfig
from pipelines.index.pipeline import build_pipeline
from pipelines.index.progress import ProgressMonitor
from pipelines.index.runner_options import (
    forks_workers,
    is_local_runner,
    make_pipeline_options,
    make_runner,
    quiet_beam_logging,
)
from pipelines.index.worker_fork_server import WorkerForkServer, shared_fork_server

METRICS_NAMESPACE = "favor.index"

EXIT_OK = 0
EXIT_SOME_FAILED = 3
EXIT_JOB_FAILED = 4


@dataclass
class IndexSummary:
    run_id: str
    listed: int = 0
    to_index: int = 0
    skipped: int = 0
    indexed: int = 0
    failed: int = 0
    windows_written: int = 0
    video_seconds: float = 0.0
    wall_s: float = 0.0
    table_versions: dict[str, int] = field(default_factory=dict)
    wrote_anything: bool = False
    failures: list[dict] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    model_version: str = ""
    # wall seconds per phase: catalog (store open, listing, known videos), pipeline (the Beam run, worker start-up
    # and shut-down included), commit, maintenance (indexes + compaction)
    phase_s: dict[str, float] = field(default_factory=dict)
    # "forked" (local runner, workers forked from the warm worker server), "cold" (local runner, workers started
    # from scratch) or "runner" (another runner starts its own workers)
    worker_start: str = "cold"

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if self.failed else EXIT_OK

    def as_dict(self) -> dict:
        out = dict(self.__dict__)
        out["exit_code"] = self.exit_code
        out["video_seconds_per_wall_s"] = round(self.video_seconds / self.wall_s, 3) if self.wall_s else None
        return out


def _metric_totals(result) -> dict[str, float]:
    totals: dict[str, float] = {}
    try:
        query = result.metrics().query()
    except Exception:  # noqa: BLE001 - some runners have no metrics API
        return totals
    for counter in query.get("counters", []):
        if counter.key.metric.namespace.startswith("favor") or counter.key.metric.namespace.startswith("BeamML"):
            name = counter.key.metric.name
            totals[name] = totals.get(name, 0) + (counter.committed or counter.attempted or 0)
    for dist in query.get("distributions", []):
        if dist.key.metric.namespace.startswith("favor"):
            value = dist.committed or dist.attempted
            if value is not None and value.count:
                totals[f"{dist.key.metric.name}.sum"] = totals.get(f"{dist.key.metric.name}.sum", 0) + value.sum
                totals[f"{dist.key.metric.name}.count"] = totals.get(f"{dist.key.metric.name}.count", 0) + value.count
    return totals


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def worker_start_kind(config: IndexJobConfig, fork_server: WorkerForkServer | None) -> str:
    if fork_server is not None:
        return "forked"
    return "cold" if is_local_runner(config.runner) else "runner"


def run_index_job(config: IndexJobConfig, *, progress=None) -> IndexSummary:
    """Run the index job end to end; returns its summary (raises only for a job failure)."""
    started = time.perf_counter()
    # The process's warm worker server (`favor index` has started it already; else it starts now and warms up
    # while the driver opens the store and lists the archive).
    forked = forks_workers(config.runner, config.running_mode, config.fork_workers)
    fork_server = shared_fork_server(config.asr) if forked else None
    run_id = config.run_id or new_run_id()
    summary = IndexSummary(run_id=run_id, worker_start=worker_start_kind(config, fork_server))
    say = progress or (lambda message: None)
    phase_started = started

    def end_phase(name: str) -> None:
        nonlocal phase_started
        now = time.perf_counter()
        summary.phase_s[name] = round(now - phase_started, 3)
        phase_started = now

    model = describe_model(config.model, asr=config.asr)
    store = FeatureStore.open(config.db, dim=model.dim, n_query_tokens=model.n_query_tokens)
    store.ensure_tables()
    schemas = {name: store.schema(name) for name in ("videos", "windows", "failures")}
    catalog_config = CatalogConfig()

    say(f"catalog: listing {config.source}" + (f" (mtime in {config.modified_between_s})" if config.modified_between_s else ""))
    files, listing_failures = list_media_files(
        config.source, catalog_config, exclude_uris=[config.db], modified_between_s=config.modified_between_s
    )
    listed = [(f.uri, f.size_bytes, f.mtime_s) for f in files]
    video_states = store.video_states()
    summary.listed, summary.model_version = len(listed), model.model_version
    say(f"catalog: {len(listed)} media files, {len(listing_failures)} unreadable; "
        f"{sum(1 for s in video_states.values() if s[1] == model.model_version)} already known to this model version")
    end_phase("catalog")

    options = make_pipeline_options(config.runner, config.beam_args, config.num_workers, config.running_mode)
    quiet_beam_logging()
    runner = make_runner(config.runner, config.running_mode, fork_server.command if fork_server else None)
    pipeline = beam.Pipeline(runner=runner, options=options)
    build_pipeline(
        pipeline,
        listed=listed,
        listing_failures=[Failure(f.uri, f.video_id, f.stage, f.error_type, f.message) for f in listing_failures],
        config=config,
        model=model,
        video_states=video_states,
        run_id=run_id,
        schemas=schemas,
        catalog_config=catalog_config,
    )
    say(f"beam: running on {config.runner} (run {run_id})")
    with ProgressMonitor(config.db, run_id, enabled=config.show_progress):
        result = pipeline.run()
        result.wait_until_finish()
    summary.metrics = _metric_totals(result)
    end_phase("pipeline")

    say("store: committing the run")
    committed = commit_run(store, run_id, CommitConfig(optimize_after=False))
    summary.wrote_anything = committed.wrote_anything
    end_phase("commit")
    if committed.wrote_anything and config.maintain:
        say("store: refreshing indexes and compacting")
        run_maintenance(store, MaintenanceConfig(), changed_tables=[t for t, w in committed.tables.items() if w.written])
    end_phase("maintenance")

    run_videos = store.videos_df()
    run_videos = run_videos[run_videos["run_id"] == run_id] if len(run_videos) else run_videos
    summary.indexed = int((run_videos["status"] == store_schema.STATUS_INDEXED).sum()) if len(run_videos) else 0
    summary.windows_written = int(run_videos["n_windows"].sum()) if len(run_videos) else 0
    summary.video_seconds = float(run_videos.loc[run_videos["status"] == store_schema.STATUS_INDEXED, "duration_s"].sum()) if len(run_videos) else 0.0
    run_failures = store.failures_df(run_id=run_id)
    summary.failures = run_failures[["uri", "stage", "error_type", "message"]].to_dict("records") if len(run_failures) else []
    summary.failed = len({f["uri"] for f in summary.failures})
    summary.to_index = int(summary.metrics.get("videos_decoded", 0)) + summary.failed
    summary.skipped = max(summary.listed - summary.to_index, 0)
    summary.table_versions = store.table_versions()
    summary.wall_s = time.perf_counter() - started
    return summary

