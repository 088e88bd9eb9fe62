"""Arrow schemas of the four store tables, declared once.

Tables (DESIGN section 3):
- `videos`:   one row per source file (content), keyed by `video_id` (content hash).
- `windows`:  one row per window, keyed by (`video_id`, `window_idx`); `tokens` is a
              multivector (list of `n_query_tokens` vectors of width `dim`), searched with
              cosine MaxSim; `pooled`, `audio_vec`, `visual_vec` are single `dim` vectors;
              `frame_audio`, `frame_visual` (nullable, not indexed) hold one `dim` vector per frame.
- `failures`: one row per failed input, keyed by (`uri`, `run_id`, `stage`).
- `answers`:  one row per QA answer, keyed by (`question_id`, `model_version`).

The token width `dim` (D) and the number of query tokens come from `WindowShape`,
never from literals here. Timestamps are microseconds, UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Mapping

import pyarrow as pa

from favor_ops.errors import StageError

VIDEOS = "videos"
WINDOWS = "windows"
FAILURES = "failures"
ANSWERS = "answers"
TABLE_NAMES: tuple[str, ...] = (VIDEOS, WINDOWS, FAILURES, ANSWERS)

# Merge keys of each table: rows with equal keys are the same row.
TABLE_KEYS: Mapping[str, tuple[str, ...]] = {
    VIDEOS: ("video_id",),
    WINDOWS: ("video_id", "window_idx"),
    FAILURES: ("uri", "run_id", "stage"),
    ANSWERS: ("question_id", "model_version"),
}

STATUS_INDEXED = "indexed"
STATUS_FAILED = "failed"
VIDEO_STATUSES: tuple[str, ...] = (STATUS_INDEXED, STATUS_FAILED)
# Staged only, never stored: a `videos` row with this status asks the commit to delete the video's rows (its content
# is gone from its uri; favor_ops.store.catalog.stale_video_ids).
STATUS_REMOVED = "removed"

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")

# Vector columns of `windows`; `tokens` is the multivector one.
TOKENS_COLUMN = "tokens"
POOLED_COLUMN = "pooled"
AUDIO_VEC_COLUMN = "audio_vec"
VISUAL_VEC_COLUMN = "visual_vec"
# Per-frame vectors (not indexed): null for checkpoints without them (RetrievalHeadsConfig.frame_vectors) and in
# tables created before them (FeatureStore.add_missing_columns adds them on the next write).
FRAME_AUDIO_COLUMN = "frame_audio"
FRAME_VISUAL_COLUMN = "frame_visual"
TRANSCRIPT_COLUMN = "transcript"


class StoreSchemaError(StageError):
    """Data or an existing table does not match the store schema (wrong D, missing column...)."""

    stage = "store"


@dataclass(frozen=True)
class WindowShape:
    """Sizes of the per-window vectors stored in `windows`."""

    dim: int  # D: width of every stored vector (query token, pooled, per-modality)
    n_query_tokens: int = 32  # query tokens per window (rows of the `tokens` multivector)

    def __post_init__(self):
        if self.dim < 1 or self.n_query_tokens < 1:
            raise ValueError(f"dim and n_query_tokens must be >= 1, got {self}")


def vector_type(dim: int) -> pa.DataType:
    """One vector: fixed_size_list<float32, dim>."""
    return pa.list_(pa.field("item", pa.float32()), dim)


def multivector_type(dim: int) -> pa.DataType:
    """A multivector: list<fixed_size_list<float32, dim>> (what LanceDB indexes as multivector)."""
    return pa.list_(pa.field("item", vector_type(dim)))


def videos_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field("video_id", pa.string(), nullable=False),  # first hex chars of the sha256 of the content
            pa.field("uri", pa.string(), nullable=False),
            pa.field("duration_s", pa.float64()),
            pa.field("fps", pa.float32()),  # frames per second sampled by the model (not the source rate)
            pa.field("has_audio", pa.bool_()),
            pa.field("has_video", pa.bool_()),
            pa.field("n_windows", pa.int32()),
            pa.field("model_version", pa.string(), nullable=False),
            pa.field("indexed_at", TIMESTAMP_TYPE),
            pa.field("status", pa.string(), nullable=False),  # "indexed" | "failed"
            pa.field("run_id", pa.string()),
        ]
    )


def windows_schema(shape: WindowShape) -> pa.Schema:
    return pa.schema(
        [
            pa.field("video_id", pa.string(), nullable=False),
            pa.field("window_idx", pa.int32(), nullable=False),
            pa.field("t_start", pa.float64()),  # seconds from the start of the file, inclusive
            pa.field("t_end", pa.float64()),  # seconds, exclusive
            pa.field(TOKENS_COLUMN, multivector_type(shape.dim)),  # (n_query_tokens, D)
            pa.field(POOLED_COLUMN, vector_type(shape.dim)),  # (D,)
            pa.field(AUDIO_VEC_COLUMN, vector_type(shape.dim)),  # (D,) audio side, cross-modal matching
            pa.field(VISUAL_VEC_COLUMN, vector_type(shape.dim)),  # (D,) visual side
            pa.field("has_audio", pa.bool_()),
            pa.field("has_video", pa.bool_()),
            pa.field(TRANSCRIPT_COLUMN, pa.string()),
            pa.field("model_version", pa.string(), nullable=False),
            # last, so a table created before them has the same column order once they are added
            pa.field(FRAME_AUDIO_COLUMN, multivector_type(shape.dim)),  # (L, D) what each frame sounds like, or null
            pa.field(FRAME_VISUAL_COLUMN, multivector_type(shape.dim)),  # (L, D) what each frame shows, or null
        ],
        metadata={b"favor.n_query_tokens": str(shape.n_query_tokens).encode()},
    )


def failures_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field("uri", pa.string(), nullable=False),
            pa.field("video_id", pa.string()),  # null when the failure happened before hashing
            pa.field("stage", pa.string(), nullable=False),
            pa.field("error_type", pa.string(), nullable=False),
            pa.field("message", pa.string()),
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("at", TIMESTAMP_TYPE),
        ]
    )


EVIDENCE_SPAN_TYPE = pa.struct([pa.field("t_start", pa.float64()), pa.field("t_end", pa.float64())])


def answers_schema() -> pa.Schema:
    return pa.schema(
        [
            pa.field("question_id", pa.string(), nullable=False),
            pa.field("video_id", pa.string()),
            pa.field("question", pa.string()),
            pa.field("answer", pa.string()),
            pa.field("evidence", pa.list_(pa.field("item", EVIDENCE_SPAN_TYPE))),  # window spans, seconds
            pa.field("model_version", pa.string(), nullable=False),
            pa.field("error", pa.string()),  # null when answered
            pa.field("at", TIMESTAMP_TYPE),
        ]
    )


def table_schema(name: str, shape: WindowShape | None = None) -> pa.Schema:
    """Schema of table `name`; `windows` needs the WindowShape."""
    if name == VIDEOS:
        return videos_schema()
    if name == WINDOWS:
        if shape is None:
            raise ValueError("the windows schema needs a WindowShape (dim, n_query_tokens)")
        return windows_schema(shape)
    if name == FAILURES:
        return failures_schema()
    if name == ANSWERS:
        return answers_schema()
    raise ValueError(f"unknown store table {name!r}; expected one of {TABLE_NAMES}")


def window_shape_of(schema: pa.Schema) -> WindowShape:
    """Read (dim, n_query_tokens) back from an existing windows table schema."""
    pooled = schema.field(POOLED_COLUMN).type
    if not pa.types.is_fixed_size_list(pooled):
        raise StoreSchemaError(POOLED_COLUMN, f"expected fixed_size_list, found {pooled}")
    meta = schema.metadata or {}
    n_query_tokens = int(meta.get(b"favor.n_query_tokens", b"32"))
    return WindowShape(dim=pooled.list_size, n_query_tokens=n_query_tokens)


def conform(data: pa.Table | list[dict], schema: pa.Schema, *, table: str = "?") -> pa.Table:
    """Cast rows to `schema` (columns reordered, missing nullable columns filled with nulls).

    Raises StoreSchemaError with a one-line reason when a required column is missing or a value
    does not fit (wrong vector width, wrong type).
    """
    if isinstance(data, list):
        try:
            return pa.Table.from_pylist(data, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as err:
            raise StoreSchemaError(table, f"rows do not fit the {table} schema: {err}") from None
    arrays = []
    for field in schema:
        if field.name in data.column_names:
            column = data.column(field.name)
            try:
                arrays.append(column.cast(field.type) if column.type != field.type else column)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
                raise StoreSchemaError(table, f"column {field.name} ({column.type}) does not fit {field.type}: {err}") from None
        elif field.nullable:
            arrays.append(pa.nulls(data.num_rows, field.type))
        else:
            raise StoreSchemaError(table, f"required column {field.name} is missing")
    return pa.Table.from_arrays(arrays, schema=schema)


def check_window_tokens(windows: pa.Table, shape: WindowShape) -> None:
    """Every `tokens` multivector must hold exactly n_query_tokens vectors."""
    if windows.num_rows == 0:
        return
    import pyarrow.compute as pc

    lengths = pc.list_value_length(windows.column(TOKENS_COLUMN))
    bad = pc.sum(pc.not_equal(lengths, shape.n_query_tokens)).as_py() or 0
    if bad:
        raise StoreSchemaError(WINDOWS, f"{bad} windows do not have {shape.n_query_tokens} query tokens")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def failure_row(
    err: StageError | Exception,
    *,
    run_id: str,
    uri: str | None = None,
    video_id: str | None = None,
    stage: str | None = None,
    at: dt.datetime | None = None,
) -> dict:
    """A `failures` row from a typed error (StageError carries uri, stage, reason)."""
    if isinstance(err, StageError):
        return {
            "uri": uri or err.uri,
            "video_id": video_id,
            "stage": stage or err.stage,
            "error_type": err.error_type,
            "message": err.reason,
            "run_id": run_id,
            "at": at or utc_now(),
        }
    if uri is None:
        raise ValueError("failure_row needs uri= for an error that is not a StageError")
    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return {
        "uri": uri,
        "video_id": video_id,
        "stage": stage or "unknown",
        "error_type": type(err).__name__,
        "message": message,
        "run_id": run_id,
        "at": at or utc_now(),
    }
