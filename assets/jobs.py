"""The job the schedule and the sensor launch: the whole index graph, one arrival-day partition (or range).

video_catalog -> window_tokens -> search_index -> qa_answers: index the window's arrivals, refresh the
search indexes, then answer the configured questions (none configured by default: a no-op step).

The steps run in one process (in_process_executor): the graph is a chain, the Beam job brings its
own parallelism, and one process loads torch and the store once instead of once per step.

Its runs carry the `favor/gpu` tag, so dagster.yaml's QueuedRunCoordinator
(`tag_concurrency_limits: [{key: favor/gpu, limit: 1}]`) runs one encoding run at a time.
"""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job, in_process_executor

from assets.index_assets import GPU_TAG_KEY, index_graph_assets

INDEX_JOB_NAME = "favor_index_job"

index_graph_job = define_asset_job(
    INDEX_JOB_NAME,
    selection=AssetSelection.assets(*index_graph_assets),  # their checks come with them; partitions: daily_arrivals
    tags={GPU_TAG_KEY: "true"},
    executor_def=in_process_executor,
    description="Catalog the archive, index new files with the Beam job, refresh the search indexes, answer the questions file.",
)
