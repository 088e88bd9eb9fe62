"""FeatureStore: the four LanceDB tables at one URI, plus a small reading API.

The URI is a local directory or an object store URI (s3://, gs://, az://) passed to
`lancedb.connect` unchanged. `memory://` is not a LanceDB persistence target; tests use
temporary directories.

Readers always see the last committed table version: the connection is opened with a read
consistency interval (0 s by default: every read checks for a newer version), and writes
happen only through `favor_ops.store.commit` (one commit per run).

A table created before a nullable column was declared (e.g. `windows` without `frame_audio` /
`frame_visual`) stays readable as it is (readers treat an absent column as null); the next
commit that writes rows to it adds the missing columns first (`add_missing_columns`).
"""

from __future__ import annotations

import datetime as dt
from typing import Mapping, Sequence

import lancedb
import numpy as np
import pandas as pd
import pyarrow as pa

from favor_ops.store.schema import (
    ANSWERS,
    FAILURES,
    STATUS_INDEXED,
    TABLE_KEYS,
    TABLE_NAMES,
    TOKENS_COLUMN,
    TRANSCRIPT_COLUMN,
    VIDEOS,
    WINDOWS,
    StoreSchemaError,
    WindowShape,
    conform,
    table_schema,
    window_shape_of,
)

COSINE = "cosine"  # the only metric LanceDB supports for multivector (MaxSim) search


def sql_quote(value: str) -> str:
    """A SQL string literal: 'value' with single quotes doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_in(column: str, values: Sequence[str]) -> str:
    """`column IN ('a', 'b')` for a non-empty list of strings."""
    if not values:
        raise ValueError("sql_in needs at least one value")
    return f"{column} IN ({', '.join(sql_quote(v) for v in values)})"


class FeatureStore:
    """LanceDB tables `videos`, `windows`, `failures`, `answers` at `uri`.

    Args:
        uri: LanceDB URI (local dir, s3://bucket/prefix, ...).
        shape: vector sizes of `windows` (D, query tokens). Needed to create `windows`; when the
            table already exists its schema wins and a different `shape` raises StoreSchemaError.
        storage_options: passed to lancedb.connect (object store credentials, region...).
        fs_options: passed to fsspec for the staging area (shards) under the same URI.
        read_consistency_interval_s: how stale a read may be; 0 = always the latest commit.
    """

    def __init__(
        self,
        uri: str,
        shape: WindowShape | None = None,
        *,
        storage_options: Mapping[str, str] | None = None,
        fs_options: Mapping | None = None,
        read_consistency_interval_s: float | None = 0.0,
    ):
        self.uri = str(uri).rstrip("/") if str(uri) not in ("/",) else str(uri)
        self.storage_options = dict(storage_options or {})
        self.fs_options = dict(fs_options or {})
        interval = None if read_consistency_interval_s is None else dt.timedelta(seconds=read_consistency_interval_s)
        self._db = lancedb.connect(
            self.uri,
            read_consistency_interval=interval,
            storage_options=self.storage_options or None,
        )
        self._tables: dict[str, lancedb.table.Table] = {}
        self.shape = self._resolve_shape(shape)

    @classmethod
    def open(cls, uri: str, dim: int | None = None, n_query_tokens: int = 32, **kwargs) -> "FeatureStore":
        """Open (and create on first write) the store; dim may be omitted when `windows` exists."""
        shape = WindowShape(dim=dim, n_query_tokens=n_query_tokens) if dim is not None else None
        return cls(uri, shape, **kwargs)

    # ---- tables -------------------------------------------------------------------------

    def _existing_names(self) -> set[str]:
        names: list[str] = []
        page_token = None
        while True:
            response = self._db.list_tables(page_token=page_token)
            names.extend(response.tables)
            page_token = getattr(response, "page_token", None)
            if not page_token:
                return set(names)

    def _resolve_shape(self, shape: WindowShape | None) -> WindowShape | None:
        if WINDOWS not in self._existing_names():
            return shape
        stored = window_shape_of(self._db.open_table(WINDOWS).schema)
        if shape is not None and shape.dim != stored.dim:
            raise StoreSchemaError(self.uri, f"store holds D={stored.dim} vectors, asked for D={shape.dim}")
        if shape is not None and shape.n_query_tokens != stored.n_query_tokens:
            raise StoreSchemaError(
                self.uri, f"store holds {stored.n_query_tokens} query tokens, asked for {shape.n_query_tokens}"
            )
        return stored

    def schema(self, name: str) -> pa.Schema:
        if name == WINDOWS and self.shape is None:
            raise StoreSchemaError(self.uri, "windows table does not exist yet; open the store with dim=D")
        return table_schema(name, self.shape)

    def has_table(self, name: str) -> bool:
        return name in self._tables or name in self._existing_names()

    def table(self, name: str, *, create: bool = True) -> lancedb.table.Table:
        """The LanceDB table `name`, created empty (version 1) with its schema when missing."""
        if name not in TABLE_NAMES:
            raise StoreSchemaError(name, f"unknown store table; expected one of {TABLE_NAMES}")
        if name in self._tables:
            return self._tables[name]
        if name in self._existing_names():
            table = self._db.open_table(name)
        elif create:
            table = self._db.create_table(name, schema=self.schema(name), exist_ok=True)
        else:
            raise StoreSchemaError(self.uri, f"table {name} does not exist")
        self._tables[name] = table
        return table

    def add_missing_columns(self, name: str) -> list[str]:
        """Add to an existing table the nullable columns of its schema that it lacks (a table created before they
        were declared; rows already stored read them as null): one new version, none when nothing is missing.
        Writers call it before writing rows of the current schema. Returns the names added."""
        if not self.has_table(name):
            return []
        table = self.table(name)
        stored = set(table.schema.names)
        missing = [f for f in self.schema(name) if f.name not in stored]
        required = [f.name for f in missing if not f.nullable]
        if required:
            raise StoreSchemaError(self.uri, f"table {name} lacks required columns {required}")
        if missing:
            table.add_columns(missing)
        return [f.name for f in missing]

    def ensure_tables(self) -> None:
        for name in TABLE_NAMES:
            if name != WINDOWS or self.shape is not None:
                self.table(name)

    def table_version(self, name: str) -> int:
        """Current committed version of table `name`; 0 when it does not exist."""
        if not self.has_table(name):
            return 0
        table = self.table(name)
        table.checkout_latest()
        return table.version

    def table_versions(self) -> dict[str, int]:
        return {name: self.table_version(name) for name in TABLE_NAMES}

    def counts(self) -> dict[str, int]:
        """Rows per table (0 for a table that does not exist)."""
        return {name: (self.table(name).count_rows() if self.has_table(name) else 0) for name in TABLE_NAMES}

    # ---- reading ------------------------------------------------------------------------

    def _to_pandas(self, name: str, where: str | None = None, columns: list[str] | None = None) -> pd.DataFrame:
        if not self.has_table(name):
            return self.schema(name).empty_table().to_pandas() if name != WINDOWS or self.shape else pd.DataFrame()
        query = self.table(name).search()
        if where:
            query = query.where(where)
        if columns:
            query = query.select(columns)
        return query.limit(None).to_pandas()

    def videos_df(self) -> pd.DataFrame:
        """All `videos` rows, sorted by uri."""
        return self._to_pandas(VIDEOS).sort_values(["uri", "video_id"], ignore_index=True)

    def failures_df(self, run_id: str | None = None) -> pd.DataFrame:
        where = f"run_id = {sql_quote(run_id)}" if run_id else None
        return self._to_pandas(FAILURES, where).sort_values(["uri", "stage", "run_id"], ignore_index=True)

    def answers_df(self) -> pd.DataFrame:
        return self._to_pandas(ANSWERS).sort_values(["question_id", "model_version"], ignore_index=True)

    def windows_for_video(self, video_id: str) -> pd.DataFrame:
        """Windows of one video in time order (window_idx ascending)."""
        frame = self._to_pandas(WINDOWS, f"video_id = {sql_quote(video_id)}")
        return frame.sort_values("window_idx", ignore_index=True)

    def video_states(self) -> dict[str, tuple[str, str, str]]:
        """video_id -> (uri, model_version, status) for every `videos` row (what the catalog needs)."""
        if not self.has_table(VIDEOS):
            return {}
        rows = self.table(VIDEOS).search().select(["video_id", "uri", "model_version", "status"]).limit(None).to_arrow()
        return {
            vid: (uri, mv, st)
            for vid, uri, mv, st in zip(
                rows["video_id"].to_pylist(),
                rows["uri"].to_pylist(),
                rows["model_version"].to_pylist(),
                rows["status"].to_pylist(),
            )
        }

    def indexed_video_ids(self, model_version: str) -> set[str]:
        return {vid for vid, (_, mv, st) in self.video_states().items() if mv == model_version and st == STATUS_INDEXED}

    # ---- search (cosine set explicitly: multivector search only supports cosine) ---------

    def search_windows(
        self,
        query_vectors: np.ndarray,  # (Q, D) multivector query or (D,) single vector
        *,
        k: int = 10,
        column: str = TOKENS_COLUMN,
        where: str | None = None,
        nprobes: int | None = None,
    ) -> pd.DataFrame:
        """Nearest windows by cosine distance; for `tokens` the distance is MaxSim:
        sum over query vectors q of (1 - max over window tokens t of cos(q, t)). Column `_distance`."""
        query = np.asarray(query_vectors, dtype=np.float32)
        if self.shape is not None and query.shape[-1] != self.shape.dim:
            raise StoreSchemaError(column, f"query vectors have width {query.shape[-1]}, store holds D={self.shape.dim}")
        if not self.has_table(WINDOWS):
            return pd.DataFrame()
        builder = self.table(WINDOWS).search(query, vector_column_name=column).distance_type(COSINE).limit(k)
        if nprobes is not None:
            builder = builder.nprobes(nprobes)
        if where:
            builder = builder.where(where, prefilter=True)
        return builder.to_pandas()

    def search_transcripts(self, text: str, *, k: int = 10, where: str | None = None) -> pd.DataFrame:
        """Full-text (BM25) search over `windows.transcript` (needs the FTS index, see maintenance)."""
        if not self.has_table(WINDOWS):
            return pd.DataFrame()
        builder = self.table(WINDOWS).search(text, query_type="fts", fts_columns=TRANSCRIPT_COLUMN).limit(k)
        if where:
            builder = builder.where(where, prefilter=True)
        return builder.to_pandas()

    # ---- answers (written directly: QA is not a sharded Beam stage) ----------------------

    def upsert_answers(self, rows: pa.Table | list[dict]) -> int:
        """Insert or replace answers keyed by (question_id, model_version); returns rows written.

        Keys are deduplicated first (the last row of a key wins); no rows -> nothing written.
        """
        from favor_ops.store.commit import dedupe_last

        batch = conform(rows, self.schema(ANSWERS), table=ANSWERS)
        batch = dedupe_last(batch, TABLE_KEYS[ANSWERS])
        if batch.num_rows == 0:
            return 0
        (
            self.table(ANSWERS)
            .merge_insert(list(TABLE_KEYS[ANSWERS]))
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(batch)
        )
        return batch.num_rows

    def __repr__(self) -> str:
        return f"FeatureStore({self.uri!r}, shape={self.shape})"
