"""Dagster orchestration of the index (DESIGN section 5): assets, checks, partitions, schedule, sensor.

    video_catalog -> window_tokens -> search_index      (daily arrival partitions, single-run backfills)

`assets.definitions.defs` is the code location (workspace.yaml); resources in `assets.resources`
point at the archive, the LanceDB store, the model and the Beam runner (env vars or launchpad).
Nothing in `favor_ops` or `pipelines` imports this package. See docs/operations.md.
"""
