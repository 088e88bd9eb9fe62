"""pipelines: Beam jobs (transforms, ModelHandlers, options) and the `favor` command line.

May import favor_ops and Beam; never Dagster or assets.
"""
