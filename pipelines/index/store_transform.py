"""Store: rows -> Arrow shards in the store's staging area, one shard per table per bundle.

Workers never write the Lance tables; the driver commits every shard of the
run at once after the pipeline finishes (favor_ops.store.commit), so readers
never see half a run and a crash leaves the previous version intact.
"""

from __future__ import annotations

from collections.abc import Mapping

import apache_beam as beam
import pyarrow as pa

from favor_ops.store.shards import ShardWriter

METRICS_NAMESPACE = "favor.index"


class WriteShardsFn(beam.DoFn):
    """Buffers (table_name, rows) elements for a bundle and writes them as shards in finish_bundle."""

    def __init__(self, db_uri: str, run_id: str, schemas: Mapping[str, pa.Schema], fs_options: Mapping | None = None):
        self.db_uri = db_uri
        self.run_id = run_id
        self.schemas = dict(schemas)
        self.fs_options = dict(fs_options or {})
        self._writer: ShardWriter | None = None
        self.rows_staged = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "rows_staged")

    def start_bundle(self):
        self._writer = ShardWriter(self.db_uri, self.run_id, self.schemas, fs_options=self.fs_options or None)

    def process(self, element: tuple[str, list[dict]]):
        table_name, rows = element
        self._writer.add(table_name, rows)
        self.rows_staged.inc(len(rows))

    def finish_bundle(self):
        self._writer.flush()
        self._writer = None
