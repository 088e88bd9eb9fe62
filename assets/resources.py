"""Dagster resources: where the archive and the store are, which model indexes, how Beam runs.

Each field can be set from the launchpad (run config `resources: {store: {config: {uri: ...}}}`)
or from an environment variable read when the definitions load (the UI then shows the variable
as the value's source):

    FAVOR_ARCHIVE_URI   archive of media files       default $FAVOR_HOME/archive
    FAVOR_DB_URI        LanceDB feature store        default $FAVOR_HOME/db
    FAVOR_MODEL         checkpoint dir or preset     default the trained demo checkpoint, else preset `demo`
    FAVOR_BEAM_RUNNER   Beam runner                  default `local` (FnApiRunner, worker processes)
    FAVOR_QA_QUESTIONS  questions JSONL for qa_answers   default none (qa_answers answers nothing)
    FAVOR_QA_MODEL      QA checkpoint dir or preset  default none (the QA library's default checkpoint)

FAVOR_HOME defaults to `.favor` in the working directory, so a fresh checkout works with no
settings: `dagster dev` in the repository root indexes `.favor/archive` into `.favor/db`.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from favor_ops.models.default_checkpoint import default_model_spec, favor_home

ARCHIVE_URI_ENV = "FAVOR_ARCHIVE_URI"
DB_URI_ENV = "FAVOR_DB_URI"
MODEL_ENV = "FAVOR_MODEL"
BEAM_RUNNER_ENV = "FAVOR_BEAM_RUNNER"
QA_QUESTIONS_ENV = "FAVOR_QA_QUESTIONS"
QA_MODEL_ENV = "FAVOR_QA_MODEL"

LOCAL_RUNNER = "local"  # pipelines.index.runner_options.LOCAL_RUNNER (not imported: it pulls in Beam)


def default_archive_uri() -> str:
    return str(favor_home() / "archive")


def default_db_uri() -> str:
    return str(favor_home() / "db")


def default_answers_dir() -> str:
    return str(favor_home() / "qa")


def env_or_default(name: str, default: str | None) -> EnvVar | str | None:
    """EnvVar(name) when the variable is set (resolved at run time, shown as such in the UI), else `default`."""
    return EnvVar(name) if os.environ.get(name) else default


def _is_local_uri(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _local_path(uri: str) -> Path:
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri)


class ArchiveResource(ConfigurableResource):
    """The media archive: a local directory or any fsspec URI (file://, s3://, gs://, memory://)."""

    uri: str = Field(default=default_archive_uri(), description="Archive URI (local dir or fsspec URI).")

    def prepare(self) -> None:
        """Create the default local archive directory on first use (a fresh checkout has none);
        any other missing archive is left alone, so a mistyped URI is reported, not papered over."""
        if _is_local_uri(self.uri) and Path(self.uri) == Path(default_archive_uri()):
            _local_path(self.uri).mkdir(parents=True, exist_ok=True)


class LanceStoreResource(ConfigurableResource):
    """The LanceDB feature store (tables videos, windows, failures, answers)."""

    uri: str = Field(default=default_db_uri(), description="LanceDB URI (local dir, s3://bucket/prefix, ...).")

    def open(self, dim: int | None = None, n_query_tokens: int = 32):
        """FeatureStore at `uri` (tables are created by the index job's first commit)."""
        from favor_ops.store.feature_store import FeatureStore

        return FeatureStore.open(self.uri, dim=dim, n_query_tokens=n_query_tokens)


class ModelResource(ConfigurableResource):
    """The model the index job encodes with: a FAVOR checkpoint directory or a preset name."""

    spec: str = Field(default=default_model_spec(), description="Checkpoint dir or preset (tiny, demo, favor-13b).")
    device: str = Field(default="auto", description="torch device for encoding: auto, cpu, cuda, cuda:0 ...")

    def model_version(self) -> str:
        """The version string rows are stored under (preset + config hash, or name + weights hash)."""
        from pipelines.index.chunk_encoder import describe_model

        return describe_model(self.spec).model_version


class BeamRunnerResource(ConfigurableResource):
    """How the Beam index job runs: the runner and its options."""

    runner: str = Field(default=LOCAL_RUNNER, description="local, or a Beam runner name (DataflowRunner, FlinkRunner, ...).")
    num_workers: int | None = Field(default=None, description="local runner: SDK worker processes (None: one per core).")
    running_mode: str = Field(
        default="multi_processing", description="local runner: multi_processing | multi_threading | in_memory."
    )
    extra_args: list[str] = Field(default_factory=list, description="Extra --flag=value Beam pipeline options.")

    def index_job_config(
        self,
        *,
        source: str,
        db: str,
        model: str,
        device: str = "auto",
        modified_between_s: tuple[float, float] | None = None,
    ):
        """IndexJobConfig for one run: only files with start <= mtime < end when `modified_between_s` is
        given (a partition's arrival window). Indexes and compaction are left to the `search_index` asset."""
        from pipelines.index.job import IndexJobConfig

        return IndexJobConfig(
            source=source,
            db=db,
            model=model,
            runner=self.runner,
            beam_args=tuple(self.extra_args),
            num_workers=self.num_workers,
            running_mode=self.running_mode,
            device=device,
            maintain=False,
            modified_between_s=modified_between_s,
        )


class QAResource(ConfigurableResource):
    """Batch question answering for `qa_answers` (favor_ops.qa.batch.run_batch_qa)."""

    questions_path: str | None = Field(
        default=None,
        description='Questions JSONL, one {"question_id", "video_id", "question"} per line; none: nothing is answered.',
    )
    model: str | None = Field(default=None, description="QA checkpoint dir or preset; none: the QA library's default.")
    answers_dir: str = Field(
        default=default_answers_dir(),
        description="Directory of each run's answers JSONL (answers-<run_id>.jsonl); answers also go to the store.",
    )

    def questions(self) -> str | None:
        """The configured questions file, or None (unset or blank)."""
        return (self.questions_path or "").strip() or None

    def answers_path(self, run_id: str) -> str:
        """Where this run's answers JSONL goes (a local answers_dir is created)."""
        directory = self.answers_dir.rstrip("/")
        if _is_local_uri(directory):
            _local_path(directory).mkdir(parents=True, exist_ok=True)
        return f"{directory}/answers-{run_id}.jsonl"


def resources_from_env() -> dict[str, ConfigurableResource]:
    """The resources `defs` binds: environment variables when set, defaults otherwise."""
    return {
        "archive": ArchiveResource(uri=env_or_default(ARCHIVE_URI_ENV, default_archive_uri())),
        "store": LanceStoreResource(uri=env_or_default(DB_URI_ENV, default_db_uri())),
        "model": ModelResource(spec=env_or_default(MODEL_ENV, default_model_spec())),
        "beam": BeamRunnerResource(runner=env_or_default(BEAM_RUNNER_ENV, LOCAL_RUNNER)),
        "qa": QAResource(questions_path=env_or_default(QA_QUESTIONS_ENV, None), model=env_or_default(QA_MODEL_ENV, None)),
    }
