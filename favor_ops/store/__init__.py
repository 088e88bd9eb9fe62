"""LanceDB feature store (videos, windows, failures, answers) and the archive catalog.

Pure library: no Beam or Dagster imports. Workers write shards (`shards`), one commit per run
merges them (`commit`), `maintenance` builds indexes and compacts, `catalog` decides what to index.
Import submodules directly (`from favor_ops.store.feature_store import FeatureStore`); this
package imports nothing heavy at import time.
"""
