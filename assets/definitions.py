"""`defs`: everything `dagster dev` (workspace.yaml) and `dagster definitions validate` load."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from assets.checks import index_graph_checks, retrieval_checks
from assets.index_assets import index_graph_assets
from assets.jobs import index_graph_job
from assets.resources import resources_from_env
from assets.schedules import nightly_index_schedule
from assets.sensors import archive_arrivals_sensor

defs = Definitions(
    assets=index_graph_assets,
    asset_checks=[*index_graph_checks, *retrieval_checks],
    jobs=[index_graph_job],
    schedules=[nightly_index_schedule],
    sensors=[archive_arrivals_sensor],
    resources=resources_from_env(),
    executor=in_process_executor,  # also for ad-hoc materialisations from the asset graph (__ASSET_JOB)
)
