"""Search the feature store: a text or media query -> time spans of videos, best first.

Modes (all on the stored `windows` columns; cosine set explicitly everywhere):
- `av`:         MaxSim of the query vector(s) against the `tokens` multivector (LanceDB multivector search):
                score = mean over query vectors q of max over window tokens t of cos(q, t), in [-1, 1].
                When `tokens` has no ANN index but `pooled` has one (large tables: the maintenance config's
                `tokens_ann_max_rows`), MaxSim runs as pooled ANN + exact re-rank: the
                `maxsim_rerank_candidates` windows nearest on `pooled` are re-ranked by exact MaxSim of their
                token sets (favor_ops.retrieval.maxsim_rerank); SearchConfig.maxsim_strategy forces either path.
- `visual`:     cosine between the query vector and `visual_vec`; score = cos, in [-1, 1].
- `audio`:      cosine between the query vector and `audio_vec`.
- `transcript`: full-text (BM25) on `transcript`; score = BM25 (text queries only).
- `hybrid`:     `pooled` cosine and full-text, fused by reciprocal-rank fusion; score = RRF (text only).

Every mode fetches more windows than asked (`SearchConfig.fetch_limit`, >= 40) and, when the column
has an IVF_PQ index, re-ranks refine_factor x that many candidates on the exact vectors (10 for the
`tokens` MaxSim, 1 for single vectors; see SearchConfig). Windows of
one video whose spans touch or overlap merge into one hit (score = the best window's). The best `k`
merged hits come back.

Filters restrict the `videos` rows (uri prefix, duration, has_audio/has_video, indexed_at ranges...)
and are built only by favor_ops.retrieval.filters; the matching video ids then prefilter `windows`.
Only windows of videos listed in `videos` are returned (a search during a commit may see a run's
windows before its `videos` rows: those windows are left out).
Bad requests raise SearchInputError (stage "search") with one line saying why.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterable, Sequence

import numpy as np

from favor_ops.retrieval.filters import FilterCondition, build_where, parse_filters
from favor_ops.retrieval.query_encoder import QueryEncoder, QueryVectors
from favor_ops.retrieval.rank_fusion import DEFAULT_RRF_K, reciprocal_rank_fusion
from favor_ops.retrieval.search_errors import SearchInputError
from favor_ops.store.feature_store import COSINE, FeatureStore, sql_in
from favor_ops.store.schema import (
    AUDIO_VEC_COLUMN,
    POOLED_COLUMN,
    TOKENS_COLUMN,
    TRANSCRIPT_COLUMN,
    VIDEOS,
    VISUAL_VEC_COLUMN,
    WINDOWS,
)

MODE_AV = "av"
MODE_VISUAL = "visual"
MODE_AUDIO = "audio"
MODE_TRANSCRIPT = "transcript"
MODE_HYBRID = "hybrid"
MODES: tuple[str, ...] = (MODE_AV, MODE_VISUAL, MODE_AUDIO, MODE_TRANSCRIPT, MODE_HYBRID)
TEXT_ONLY_MODES = frozenset({MODE_TRANSCRIPT, MODE_HYBRID})
VECTOR_COLUMN_OF_MODE = {MODE_AV: TOKENS_COLUMN, MODE_VISUAL: VISUAL_VEC_COLUMN, MODE_AUDIO: AUDIO_VEC_COLUMN}
HYBRID_VECTOR_COLUMN = POOLED_COLUMN

# Query sources of a request (exactly one is set).
TEXT, AUDIO, IMAGE, VIDEO = "text", "audio", "image", "video"

WINDOW_COLUMNS = ["video_id", "window_idx", "t_start", "t_end", TRANSCRIPT_COLUMN]


@dataclass(frozen=True)
class SearchConfig:
    max_k: int = 1000  # largest k a request may ask for
    min_fetch: int = 40  # windows fetched per ranked list before span merging (never fewer)
    fetch_per_k: int = 4  # ... and at least fetch_per_k * k
    # IVF_PQ: re-rank refine_factor x fetch candidates on the exact vectors (1: the fetched ones only).
    # Measured at 100k windows (favor bench search): MaxSim needs 10 for recall@10 >= 0.95; pooled and the
    # per-modality vectors reach 0.99 with 1 (the 4x over-fetch is the re-ranked pool) at half the latency.
    refine_factor_tokens: int = 10
    refine_factor_vectors: int = 1
    nprobes: int | None = None  # IVF partitions probed (None: LanceDB default)
    rrf_k: int = DEFAULT_RRF_K  # hybrid: reciprocal-rank fusion constant
    merge_gap_s: float = 1e-6  # spans of one video closer than this (seconds) touch and merge
    max_text_chars: int = 2000  # longest text query
    hybrid_threads: int = 2  # threads of the process-wide pool running hybrid's vector list beside full text
    max_query_vectors: int = 64  # MaxSim query vectors (a video query has W x Nq tokens): evenly thinned beyond
    # MaxSim path: "multivector" (LanceDB multivector search on `tokens`), "pooled_rerank" (pooled ANN, then exact
    # MaxSim of the candidates' token sets), "auto" (pooled_rerank when `pooled` has an ANN index and `tokens` none).
    maxsim_strategy: str = "auto"
    maxsim_rerank_candidates: int = 200  # pooled-ANN candidates re-ranked exactly (at least the fetch limit)

    def fetch_limit(self, k: int) -> int:
        return max(self.min_fetch, self.fetch_per_k * k)


DEFAULT_SEARCH_CONFIG = SearchConfig()


@dataclass(frozen=True)
class SearchRequest:
    """One query: exactly one of text / audio_path / image_path / video_path."""

    text: str | None = None
    audio_path: str | None = None
    image_path: str | None = None
    video_path: str | None = None
    mode: str = MODE_AV
    k: int = 10
    where: tuple = ()  # FilterCondition | (column, op, value) | "column<op>value" items, ANDed

    @property
    def source(self) -> str:
        """Which query source is set (text, audio, image, video); call validate_request first."""
        for name, value in ((TEXT, self.text), (AUDIO, self.audio_path), (IMAGE, self.image_path), (VIDEO, self.video_path)):
            if value is not None:
                return name
        raise SearchInputError("query", "no query given: pass text or an audio, image or video file")


@dataclass(frozen=True)
class WindowHit:
    """One ranked window (before span merging)."""

    video_id: str
    window_idx: int
    t_start: float  # seconds, inclusive
    t_end: float  # seconds, exclusive
    score: float
    transcript: str = ""


@dataclass(frozen=True)
class SearchHit:
    """One result: a time span of one video (one or more adjacent windows)."""

    video_id: str
    uri: str
    t_start: float  # seconds from the start of the file
    t_end: float
    score: float  # the best window's score (mode-dependent scale, see module docstring)
    transcript: str  # transcripts of the span's windows, in time order
    window_indices: tuple[int, ...]  # window_idx of the merged windows, ascending

    def as_dict(self) -> dict:
        out = asdict(self)
        out["window_indices"] = list(self.window_indices)
        return out


# ---- request validation -------------------------------------------------------------------------


def validate_request(request: SearchRequest, cfg: SearchConfig = DEFAULT_SEARCH_CONFIG) -> tuple[SearchRequest, list[FilterCondition]]:
    """Check a request; returns it (text stripped) and its validated filter conditions."""
    if not isinstance(request, SearchRequest):
        raise SearchInputError("query", f"expected a SearchRequest, got {type(request).__name__}")
    given = [name for name, value in ((TEXT, request.text), (AUDIO, request.audio_path), (IMAGE, request.image_path),
                                      (VIDEO, request.video_path)) if value is not None]  # fmt: skip
    if not given:
        raise SearchInputError("query", "no query given: pass text or an audio, image or video file")
    if len(given) > 1:
        raise SearchInputError("query", f"give one query, not {' and '.join(given)}")
    if request.mode not in MODES:
        raise SearchInputError("mode", f"unknown mode {str(request.mode)[:20]!r}; expected one of {', '.join(MODES)}")
    k = request.k
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= cfg.max_k:
        raise SearchInputError("k", f"k must be a whole number from 1 to {cfg.max_k}, got {str(k)[:20]}")
    text = request.text
    if text is not None:
        if not isinstance(text, str) or not text.strip():
            raise SearchInputError("text", "query text is empty")
        if len(text) > cfg.max_text_chars:
            raise SearchInputError("text", f"query text is longer than {cfg.max_text_chars} characters")
        if "\x00" in text:
            raise SearchInputError("text", "query text contains a NUL character")
        text = text.strip()
    for name, path in ((AUDIO, request.audio_path), (IMAGE, request.image_path), (VIDEO, request.video_path)):
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise SearchInputError(name, f"{name} query file path is empty")
    if request.mode in TEXT_ONLY_MODES and text is None:
        raise SearchInputError("mode", f"mode {request.mode} needs a text query")
    where = request.where
    if isinstance(where, (str, FilterCondition)):
        where = (where,)
    conditions = parse_filters(where)
    return replace(request, text=text, k=int(k), where=tuple(conditions)), conditions


# ---- the store side -------------------------------------------------------------------------------


def ann_index_types(store: FeatureStore) -> dict[str, str]:
    """column -> index type ("IVF_PQ", "IVF_FLAT", "FTS"...) of the `windows` indexes."""
    out: dict[str, str] = {}
    for index in store.table(WINDOWS).list_indices():
        for column in index.columns:
            out[column] = str(index.index_type)
    return out


def matching_video_ids(store: FeatureStore, conditions: Sequence[FilterCondition]) -> list[str] | None:
    """Ids of the `videos` rows matching every condition; None when there are no conditions."""
    where = build_where(conditions)
    if where is None:
        return None
    if not store.has_table(VIDEOS):
        return []
    rows = store.table(VIDEOS).search().where(where).select(["video_id"]).limit(None).to_arrow()
    return sorted(set(rows["video_id"].to_pylist()))


def windows_prefilter(video_ids: list[str] | None) -> str | None:
    return None if video_ids is None else sql_in("video_id", video_ids)


def _window_hits(rows, scores: np.ndarray) -> list[WindowHit]:
    """Arrow result rows + their scores -> WindowHits (in the rows' order)."""
    columns = {name: rows[name].to_pylist() for name in WINDOW_COLUMNS}
    return [
        WindowHit(str(v), int(w), float(a), float(b), float(s), str(t or ""))
        for v, w, a, b, s, t in zip(columns["video_id"], columns["window_idx"], columns["t_start"], columns["t_end"],
                                    scores.tolist(), columns[TRANSCRIPT_COLUMN])
    ]


def _vector_query(store: FeatureStore, column: str, query: np.ndarray, limit: int, columns: list[str], *,
                  where: str | None, cfg: SearchConfig, index_types: dict[str, str]):
    """One LanceDB vector query on `windows` (cosine, PQ refine, nprobes, prefilter) -> arrow rows with _distance."""
    builder = (
        store.table(WINDOWS)
        .search(query, vector_column_name=column)
        .distance_type(COSINE)  # explicit: multivector MaxSim supports cosine only
        .select([*columns, "_distance"])  # naming _distance keeps Lance from warning per query
        .limit(limit)
    )
    if "PQ" in index_types.get(column, "").upper():  # PQ distances are approximate: re-rank on exact vectors
        builder = builder.refine_factor(cfg.refine_factor_tokens if column == TOKENS_COLUMN else cfg.refine_factor_vectors)
    if cfg.nprobes is not None:
        builder = builder.nprobes(cfg.nprobes)
    if where:
        builder = builder.where(where, prefilter=True)
    return builder.to_arrow()


def vector_window_hits(
    store: FeatureStore,
    column: str,
    query: np.ndarray,  # (Q, E) for `tokens` (MaxSim), (E,) for single-vector columns
    limit: int,
    *,
    where: str | None = None,
    cfg: SearchConfig = DEFAULT_SEARCH_CONFIG,
    index_types: dict[str, str] | None = None,
) -> list[WindowHit]:
    """Best `limit` windows by cosine on `column` (MaxSim for the `tokens` multivector), best first."""
    query = np.ascontiguousarray(query, dtype=np.float32)
    dim = store.shape.dim if store.shape is not None else query.shape[-1]
    if query.shape[-1] != dim:
        raise SearchInputError(
            "model", f"query vectors have width {query.shape[-1]} but the store holds D={dim}; "
                     "search with the model the store was indexed with (--model)")  # fmt: skip
    if not store.has_table(WINDOWS):
        return []
    index_types = ann_index_types(store) if index_types is None else index_types
    if column == TOKENS_COLUMN and use_pooled_rerank(index_types, cfg):
        return pooled_rerank_window_hits(store, query, limit, where=where, cfg=cfg, index_types=index_types)
    rows = _vector_query(store, column, query, limit, WINDOW_COLUMNS, where=where, cfg=cfg, index_types=index_types)
    if rows.num_rows == 0:
        return []
    distances = rows["_distance"].to_numpy().astype(np.float64)
    if column == TOKENS_COLUMN:
        n_query = query.shape[0] if query.ndim == 2 else 1
        scores = 1.0 - distances / n_query  # LanceDB: sum_q (1 - max_t cos) -> mean_q max_t cos
    else:
        scores = 1.0 - distances
    return _window_hits(rows, scores)


def use_pooled_rerank(index_types: dict[str, str], cfg: SearchConfig = DEFAULT_SEARCH_CONFIG) -> bool:
    """Whether MaxSim runs as pooled ANN + exact re-rank (see SearchConfig.maxsim_strategy)."""
    if cfg.maxsim_strategy not in ("auto", "multivector", "pooled_rerank"):
        raise ValueError(f"maxsim_strategy must be auto, multivector or pooled_rerank, got {cfg.maxsim_strategy!r}")
    if cfg.maxsim_strategy != "auto":
        return cfg.maxsim_strategy == "pooled_rerank"
    return POOLED_COLUMN in index_types and TOKENS_COLUMN not in index_types


def pooled_rerank_window_hits(
    store: FeatureStore,
    query: np.ndarray,  # (Q, E) or (E,)
    limit: int,
    *,
    where: str | None = None,
    cfg: SearchConfig = DEFAULT_SEARCH_CONFIG,
    index_types: dict[str, str] | None = None,
) -> list[WindowHit]:
    """Best `limit` windows by exact MaxSim among the max(limit, cfg.maxsim_rerank_candidates) windows nearest to
    the normalised mean query vector on `pooled`; the token sets come back in the same LanceDB query."""
    from favor_ops.retrieval.maxsim_rerank import maxsim_scores, pooled_query, token_sets

    queries = np.atleast_2d(np.asarray(query, dtype=np.float32))
    candidates = max(limit, cfg.maxsim_rerank_candidates)
    rows = _vector_query(store, POOLED_COLUMN, pooled_query(queries), candidates, [*WINDOW_COLUMNS, TOKENS_COLUMN],
                         where=where, cfg=cfg, index_types=index_types or {})
    if rows.num_rows == 0:
        return []
    n_tokens = store.shape.n_query_tokens if store.shape is not None else len(rows[TOKENS_COLUMN][0])
    tokens = token_sets(rows[TOKENS_COLUMN], rows.num_rows, n_tokens, queries.shape[1])  # (C, T, D)
    scores = maxsim_scores(tokens, queries).astype(np.float64)  # (C,)
    order = np.argsort(-scores, kind="stable")[:limit]
    rows = rows.drop_columns([TOKENS_COLUMN]).take(order)
    return _window_hits(rows, scores[order])


def text_window_hits(store: FeatureStore, text: str, limit: int, *, where: str | None = None) -> list[WindowHit]:
    """Best `limit` windows by BM25 over `transcript`, best first."""
    if not store.has_table(WINDOWS):
        return []
    builder = store.table(WINDOWS).search(text, query_type="fts", fts_columns=TRANSCRIPT_COLUMN).select(WINDOW_COLUMNS).limit(limit)
    if where:
        builder = builder.where(where, prefilter=True)
    try:
        rows = builder.to_arrow()
    except (ValueError, RuntimeError) as err:
        if "index" in str(err).lower():
            raise SearchInputError("transcript", "the store has no full-text index yet (index some media first)") from None
        raise
    if rows.num_rows == 0:
        return []
    return _window_hits(rows, rows["_score"].to_numpy().astype(np.float64))


def fuse_window_hits(ranked: Sequence[Sequence[WindowHit]], *, rrf_k: int, limit: int) -> list[WindowHit]:
    """Reciprocal-rank fusion of window lists; each window's score becomes its fused RRF score."""
    by_key: dict[tuple[str, int], WindowHit] = {}
    lists = []
    for hits in ranked:
        keys = []
        for hit in hits:
            key = (hit.video_id, hit.window_idx)
            by_key.setdefault(key, hit)
            keys.append(key)
        lists.append(keys)
    fused = reciprocal_rank_fusion(lists, k=rrf_k, limit=limit)
    return [replace(by_key[item.key], score=item.score) for item in fused]


def merge_adjacent(
    ranked: Iterable[WindowHit], gap_s: float = DEFAULT_SEARCH_CONFIG.merge_gap_s, max_spans: int | None = None
) -> list[SearchHit]:
    """Merge ranked windows (best first) of one video whose spans touch or overlap into one span.

    Windows are taken best first: a window joins a span of its video that it touches
    (start <= span end + gap_s and end >= span start - gap_s; it may bridge two spans), else it
    opens a new span. With `max_spans`, merging stops before a window would open span max_spans + 1,
    so low-ranked over-fetched windows extend only spans that are already among the best.
    A span's score is its best window's score; uri is left empty (see `attach_uris`).
    Result: best score first; ties by video_id then t_start.
    """
    spans: dict[str, list[list[WindowHit]]] = {}  # video_id -> groups of windows
    n_spans = 0
    seen: set[tuple[str, int]] = set()
    for hit in ranked:
        key = (hit.video_id, hit.window_idx)
        if key in seen:
            continue
        seen.add(key)
        groups = spans.setdefault(hit.video_id, [])
        touching = [g for g in groups if hit.t_start <= _end_of(g) + gap_s and hit.t_end >= _start_of(g) - gap_s]
        if not touching:
            if max_spans is not None and n_spans >= max_spans:
                break
            groups.append([hit])
            n_spans += 1
            continue
        joined = [hit]
        for group in touching:
            joined.extend(group)
            groups.remove(group)
        groups.append(joined)
        n_spans -= len(touching) - 1
    merged = [_span_of(video_id, group) for video_id, groups in spans.items() for group in groups]
    merged.sort(key=lambda h: (-h.score, h.video_id, h.t_start))
    return merged


def _start_of(group: list[WindowHit]) -> float:
    return min(w.t_start for w in group)


def _end_of(group: list[WindowHit]) -> float:
    return max(w.t_end for w in group)


def _span_of(video_id: str, group: list[WindowHit]) -> SearchHit:
    group = sorted(group, key=lambda w: (w.t_start, w.window_idx))
    texts: list[str] = []
    for window in group:
        text = window.transcript.strip()
        if text and (not texts or texts[-1] != text):
            texts.append(text)
    return SearchHit(
        video_id=video_id,
        uri="",
        t_start=_start_of(group),
        t_end=_end_of(group),
        score=max(w.score for w in group),
        transcript=" ".join(texts),
        window_indices=tuple(sorted(w.window_idx for w in group)),
    )


def video_uris(store: FeatureStore, video_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted(set(video_ids))
    if not ids or not store.has_table(VIDEOS):
        return {}
    rows = store.table(VIDEOS).search().where(sql_in("video_id", ids)).select(["video_id", "uri"]).limit(None).to_arrow()
    return dict(zip(rows["video_id"].to_pylist(), rows["uri"].to_pylist()))


def attach_uris(store: FeatureStore, hits: list[SearchHit]) -> list[SearchHit]:
    uris = video_uris(store, (h.video_id for h in hits))
    return [replace(h, uri=uris.get(h.video_id, "")) for h in hits]


# ---- the whole search -------------------------------------------------------------------------------


def thin_query_vectors(vectors: np.ndarray, max_vectors: int) -> np.ndarray:
    """(Q, E) -> at most max_vectors rows, evenly spaced (first and last kept); LanceDB runs one ANN lookup per row."""
    if len(vectors) <= max_vectors:
        return vectors
    keep = np.unique(np.linspace(0, len(vectors) - 1, max_vectors).round().astype(np.int64))
    return vectors[keep]


def rank_windows(
    store: FeatureStore,
    request: SearchRequest,
    query: QueryVectors | None,
    *,
    where: str | None = None,
    cfg: SearchConfig = DEFAULT_SEARCH_CONFIG,
    index_types: dict[str, str] | None = None,
) -> list[WindowHit]:
    """The ranked windows of a validated request (before span merging), best first."""
    limit = cfg.fetch_limit(request.k)
    mode = request.mode
    if mode in VECTOR_COLUMN_OF_MODE or mode == MODE_HYBRID:
        if query is None:
            raise SearchInputError("query", f"mode {mode} needs query vectors (a query encoder)")
    if mode == MODE_AV:
        vectors = thin_query_vectors(query.multivector, cfg.max_query_vectors)
        return vector_window_hits(store, TOKENS_COLUMN, vectors, limit, where=where, cfg=cfg, index_types=index_types)
    if mode in (MODE_VISUAL, MODE_AUDIO):
        column = VECTOR_COLUMN_OF_MODE[mode]
        return vector_window_hits(store, column, query.vector, limit, where=where, cfg=cfg, index_types=index_types)
    if mode == MODE_TRANSCRIPT:
        return text_window_hits(store, request.text, limit, where=where)
    # The two lists run concurrently (LanceDB releases the GIL): hybrid costs about the slower of the two.
    vector_future = _hybrid_pool().submit(vector_window_hits, store, HYBRID_VECTOR_COLUMN, query.vector, limit,
                                          where=where, cfg=cfg, index_types=index_types)  # fmt: skip
    text_hits = text_window_hits(store, request.text, limit, where=where)
    return fuse_window_hits([vector_future.result(), text_hits], rrf_k=cfg.rrf_k, limit=limit)


_HYBRID_POOL: ThreadPoolExecutor | None = None
_HYBRID_POOL_LOCK = threading.Lock()


def _hybrid_pool() -> ThreadPoolExecutor:
    global _HYBRID_POOL
    with _HYBRID_POOL_LOCK:
        if _HYBRID_POOL is None:
            _HYBRID_POOL = ThreadPoolExecutor(max_workers=DEFAULT_SEARCH_CONFIG.hybrid_threads, thread_name_prefix="favor-hybrid")
        return _HYBRID_POOL


def search_encoded(
    store: FeatureStore,
    request: SearchRequest,
    query: QueryVectors | None,
    cfg: SearchConfig = DEFAULT_SEARCH_CONFIG,
    *,
    index_types: dict[str, str] | None = None,
) -> list[SearchHit]:
    """Search with an already-encoded query (None for transcript mode)."""
    request, conditions = validate_request(request, cfg)
    if not store.has_table(WINDOWS):
        return []
    video_ids = matching_video_ids(store, conditions)
    if video_ids is not None and not video_ids:
        return []
    windows = rank_windows(store, request, query, where=windows_prefilter(video_ids), cfg=cfg, index_types=index_types)
    # A run commits `windows` before `videos` (favor_ops.store.commit): a search landing between the two writes
    # sees windows of videos not listed yet. They are not part of a committed run until their row is: drop them.
    uris = video_uris(store, (w.video_id for w in windows))
    windows = [w for w in windows if w.video_id in uris]
    merged = merge_adjacent(windows, cfg.merge_gap_s, max_spans=request.k)[: request.k]
    return [replace(hit, uri=uris[hit.video_id]) for hit in merged]


def encode_query(encoder: QueryEncoder | None, request: SearchRequest) -> QueryVectors | None:
    """The request's query vectors (None for transcript mode, which needs none)."""
    if request.mode == MODE_TRANSCRIPT:
        return None
    if encoder is None:
        raise SearchInputError("model", f"mode {request.mode} needs a query encoder (--model)")
    source = request.source
    if source == TEXT:
        return encoder.encode_text_query(request.text)
    if source == AUDIO:
        return encoder.encode_audio_file(request.audio_path)
    if source == IMAGE:
        return encoder.encode_image_file(request.image_path)
    return encoder.encode_video_file(request.video_path)


def search(
    store: FeatureStore,
    encoder: QueryEncoder | None,
    request: SearchRequest,
    cfg: SearchConfig = DEFAULT_SEARCH_CONFIG,
) -> list[SearchHit]:
    """Validate, encode the query, rank windows, merge adjacent ones, keep the best k (see module docstring)."""
    request, _ = validate_request(request, cfg)
    return search_encoded(store, request, encode_query(encoder, request), cfg)


def hits_as_dicts(hits: Sequence[SearchHit]) -> list[dict[str, Any]]:
    return [hit.as_dict() for hit in hits]
