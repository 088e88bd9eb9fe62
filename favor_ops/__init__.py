"""favor_ops: the pure library (models, media, store, retrieval, QA, training, evaluation).

Never imports Dagster or Beam: imports flow assets -> pipelines -> favor_ops.
"""

__version__ = "0.1.0"
