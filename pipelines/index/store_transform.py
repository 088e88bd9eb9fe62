"""Store: rows -> Arrow shards in the store's staging area, one shard per table per bundle (or per
16 MiB of rows).

Workers never write the Lance tables; the driver commits every shard of the
run at once after the pipeline finishes (favor_ops.store.commit), so readers
never see half a run and a crash leaves the previous version intact.
"""

from __future__ import annotations

from collections.abc import Mapping

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from favor_ops.store.shards import ShardWriter
from pipelines.index.elements import EncodedChunk, WindowRows

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


def _frame_vectors(vectors: np.ndarray | None, i: int) -> list[np.ndarray] | None:
    """Window i of (K, L, D) per-frame vectors as L float32 vectors of D; None (null) when the rows have none."""
    return None if vectors is None else list(vectors[i].astype(np.float32))


def window_rows_to_records(rows: WindowRows, model_version: str) -> list[dict]:
    """One `windows` row per window of the chunk; frame_audio / frame_visual are null when the rows have none."""
    n = len(rows.window_idx)
    transcripts = rows.transcripts or [""] * n
    return [
        {
            "video_id": rows.video_id,
            "window_idx": int(rows.window_idx[i]),
            "t_start": float(rows.t_start[i]),
            "t_end": float(rows.t_end[i]),
            "tokens": list(rows.tokens[i].astype(np.float32)),  # (Q, D) -> Q vectors of D
            "pooled": rows.pooled[i].astype(np.float32),
            "audio_vec": rows.audio_vec[i].astype(np.float32),
            "visual_vec": rows.visual_vec[i].astype(np.float32),
            "has_audio": bool(rows.has_audio),
            "has_video": bool(rows.has_video),
            "transcript": transcripts[i],
            "model_version": model_version,
            "frame_audio": _frame_vectors(rows.frame_audio, i),
            "frame_visual": _frame_vectors(rows.frame_visual, i),
        }
        for i in range(n)
    ]


class StageWindowsFn(WriteShardsFn):
    """Encoded chunks (WindowRows) -> `windows` shards, and one EncodedChunk per chunk once its rows are on
    disk.

    It runs fused with Encode, so a chunk's tokens go from the worker that encoded them straight to a shard
    and never through a shuffle. The EncodedChunks are emitted in finish_bundle, after the bundle's last
    shard is written: an EncodedChunk reaching the per-video assembly means its windows are staged."""

    def __init__(self, db_uri: str, run_id: str, schemas: Mapping[str, pa.Schema], model_version: str,
                 fs_options: Mapping | None = None):
        super().__init__(db_uri, run_id, schemas, fs_options)
        self.model_version = model_version
        self._staged: list[EncodedChunk] = []

    def start_bundle(self):
        super().start_bundle()
        self._staged = []

    def process(self, rows: WindowRows):
        super().process(("windows", window_rows_to_records(rows, self.model_version)))
        self._staged.append(EncodedChunk(rows.video_id, rows.chunk_idx, len(rows.window_idx)))

    def finish_bundle(self):
        super().finish_bundle()
        staged, self._staged = self._staged, []
        for chunk in staged:
            yield WindowedValue(chunk, MIN_TIMESTAMP, [GlobalWindow()])
