"""Search benchmark: LanceDB ANN search against an exact numpy scan of the same synthetic table.

    favor bench search --windows 100000 [--queries 200] [--dim 128] [--k 10] [--seed 0]

Builds, in a temporary directory, a `windows` table of `--windows` rows with the store's real schema:
clustered random vectors (each window mixes `concepts_per_window` cluster centres; its 32 x D tokens
are noisy copies of them, `pooled` is their normalised mean) and transcripts of Zipf-distributed
words from a generated word list. Indexes come from favor_ops.store.maintenance (IVF_PQ on `tokens`
and `pooled`, FTS on `transcript`), exactly as the index job builds them.

Then N text-like queries (a unit vector near one cluster centre + one or two words) run through
favor_ops.retrieval.search and report p50/p95 latency of
- MaxSim over `tokens` (ANN, av mode), pooled-vector ANN, full text, hybrid (pooled + text, RRF),
  and the whole av search (filters, ANN, span merging, uri lookup);
- recall@k of the ANN window lists against an exact brute-force MaxSim / cosine scan in numpy of
  the same vectors, and the latency ratio ANN / exact scan.
Targets (2 cores, 100k windows): p95 <= 30 ms MaxSim, <= 15 ms pooled / full text / hybrid,
recall@10 >= 0.95.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa

from favor_ops.store.maintenance import MaintenanceConfig


@dataclass(frozen=True)
class SearchBenchConfig:
    windows: int = 100_000  # rows of the synthetic `windows` table
    dim: int = 128  # D (the demo preset's width)
    n_query_tokens: int = 32  # tokens per window
    n_clusters: int = 1024  # cluster centres of the synthetic vectors
    concepts_per_window: int = 4  # centres mixed into one window's tokens
    token_noise: float = 0.35  # per-token noise (relative to a unit centre, per dimension * sqrt(D))
    query_noise: float = 0.25  # query = centre + noise, normalised
    windows_per_video: int = 60  # consecutive 5 s windows of one synthetic video
    window_s: float = 5.0
    vocabulary_words: int = 3000  # generated word list
    words_per_window: int = 12
    queries: int = 200  # timed queries per method
    warmup_queries: int = 10
    k: int = 10
    seed: int = 0
    write_batch_rows: int = 5_000
    target_maxsim_p95_ms: float = 30.0
    target_other_p95_ms: float = 15.0
    target_recall: float = 0.95
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)


SYLLABLES = ("ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "ba", "vu", "gi", "ho", "ze", "fa", "ny")


def word_list(n_words: int) -> list[str]:
    """`n_words` distinct pronounceable pseudo-words (2-3 syllables), deterministic."""
    words = []
    for i in range(n_words):
        a, b, c = i % 16, (i // 16) % 16, (i // 256) % 16
        words.append(SYLLABLES[a] + SYLLABLES[b] + (SYLLABLES[c] if i >= 256 else ""))
    return words


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass
class SyntheticTable:
    centres: np.ndarray  # (C, D) unit
    tokens: np.ndarray  # (N * Q, D) float32 unit rows (exact-scan copy)
    pooled: np.ndarray  # (N, D) float32 unit
    words: list[str]


def synthesize(cfg: SearchBenchConfig, store, progress: bool = False) -> SyntheticTable:
    """Write the synthetic windows + videos rows into `store`; returns the vectors for the exact scan."""
    rng = np.random.default_rng(cfg.seed)
    d, q = cfg.dim, cfg.n_query_tokens
    centres = _unit(rng.standard_normal((cfg.n_clusters, d)).astype(np.float32))
    words = word_list(cfg.vocabulary_words)
    zipf = 1.0 / np.arange(1, len(words) + 1)
    zipf /= zipf.sum()
    tokens_all = np.empty((cfg.windows * q, d), dtype=np.float32)
    pooled_all = np.empty((cfg.windows, d), dtype=np.float32)
    schema = store.schema("windows")
    table = store.table("windows")
    noise_scale = cfg.token_noise / np.sqrt(d)
    batches = range(0, cfg.windows, cfg.write_batch_rows)
    iterator = batches
    if progress:
        from tqdm import tqdm

        iterator = tqdm(batches, desc="bench search: writing windows", unit="batch", file=sys.stderr)
    for start in iterator:
        n = min(cfg.write_batch_rows, cfg.windows - start)
        concepts = rng.integers(0, cfg.n_clusters, size=(n, cfg.concepts_per_window))  # (n, c)
        which = rng.integers(0, cfg.concepts_per_window, size=(n, q))  # token -> concept slot
        base = centres[np.take_along_axis(concepts, which, axis=1)]  # (n, Q, D)
        tokens = _unit(base + noise_scale * rng.standard_normal((n, q, d)).astype(np.float32)).astype(np.float32)
        pooled = _unit(tokens.mean(axis=1)).astype(np.float32)  # (n, D)
        tokens_all[start * q:(start + n) * q] = tokens.reshape(n * q, d)
        pooled_all[start:start + n] = pooled
        ids = np.arange(start, start + n)
        video_idx, window_idx = ids // cfg.windows_per_video, ids % cfg.windows_per_video
        word_ids = rng.choice(len(words), size=(n, cfg.words_per_window), p=zipf)
        flat_tokens = pa.FixedSizeListArray.from_arrays(pa.array(tokens.reshape(-1), pa.float32()), d)
        token_lists = pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * q, q, dtype=np.int32)), flat_tokens)
        pooled_arr = pa.FixedSizeListArray.from_arrays(pa.array(pooled.reshape(-1), pa.float32()), d)
        batch = pa.table({
            "video_id": pa.array([f"{v:012x}" for v in video_idx]),
            "window_idx": pa.array(window_idx.astype(np.int32)),
            "t_start": pa.array(window_idx * cfg.window_s),
            "t_end": pa.array((window_idx + 1) * cfg.window_s),
            "tokens": token_lists.cast(schema.field("tokens").type),
            "pooled": pooled_arr.cast(schema.field("pooled").type),
            "audio_vec": pooled_arr.cast(schema.field("audio_vec").type),
            "visual_vec": pooled_arr.cast(schema.field("visual_vec").type),
            "has_audio": pa.array(np.ones(n, dtype=bool)),
            "has_video": pa.array(np.ones(n, dtype=bool)),
            "transcript": pa.array([" ".join(words[i] for i in row) for row in word_ids]),
            "model_version": pa.array(["bench"] * n),
        }).select(schema.names)  # fmt: skip
        table.add(batch.cast(schema))
    n_videos = int(np.ceil(cfg.windows / cfg.windows_per_video))
    now = dt.datetime.now(dt.timezone.utc)
    videos = [
        {"video_id": f"{v:012x}", "uri": f"/bench/video_{v:06d}.mp4", "duration_s": cfg.windows_per_video * cfg.window_s,
         "fps": 2.0, "has_audio": True, "has_video": True, "n_windows": cfg.windows_per_video, "model_version": "bench",
         "indexed_at": now, "status": "indexed", "run_id": "bench"}
        for v in range(n_videos)
    ]  # fmt: skip
    store.table("videos").add(pa.Table.from_pylist(videos, schema=store.schema("videos")))
    return SyntheticTable(centres=centres, tokens=tokens_all, pooled=pooled_all, words=words)


def exact_maxsim_top(tokens: np.ndarray, n_query_tokens: int, query: np.ndarray, k: int) -> np.ndarray:
    """Exact MaxSim: window ids of the k best by mean over query vectors of max cos over window tokens."""
    sims = tokens @ query.T  # (N*Q, Qq)
    per_window = sims.reshape(-1, n_query_tokens, query.shape[0]).max(axis=1).mean(axis=1)  # (N,)
    return _top_k(per_window, k)


def exact_cosine_top(vectors: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    return _top_k(vectors @ query, k)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, best first."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _percentiles_ms(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean()), "n": int(ms.size)}  # fmt: skip


def run_search_bench(cfg: SearchBenchConfig = SearchBenchConfig(), progress: bool = True, workdir: str | None = None) -> dict:
    from favor_ops.retrieval.query_encoder import QueryVectors
    from favor_ops.retrieval.search import (
        HYBRID_VECTOR_COLUMN,
        MODE_AV,
        MODE_HYBRID,
        SearchRequest,
        rank_windows,
        search_encoded,
        text_window_hits,
        vector_window_hits,
    )
    from favor_ops.store.feature_store import FeatureStore
    from favor_ops.store.maintenance import ensure_indexes

    if cfg.windows < 1000:
        raise ValueError("--windows must be >= 1000 (IVF_PQ needs enough rows to train)")
    if cfg.queries < 1:
        raise ValueError("--queries must be >= 1")
    say = (lambda message: print(f"bench search: {message}", file=sys.stderr, flush=True)) if progress else (lambda m: None)
    root = tempfile.mkdtemp(prefix="favor-search-bench-", dir=workdir)
    try:
        store = FeatureStore.open(root, dim=cfg.dim, n_query_tokens=cfg.n_query_tokens)
        store.ensure_tables()
        started = time.perf_counter()
        data = synthesize(cfg, store, progress=progress)
        write_s = time.perf_counter() - started
        say(f"wrote {cfg.windows} windows in {write_s:.1f} s; building indexes")
        maintenance = cfg.maintenance
        if maintenance.ann_min_rows > cfg.windows:
            maintenance = MaintenanceConfig(**{**asdict(maintenance), "ann_min_rows": cfg.windows})
        started = time.perf_counter()
        built = ensure_indexes(store, maintenance)
        index_s = time.perf_counter() - started
        say(f"indexes {built} in {index_s:.1f} s; running {cfg.queries} queries per method")

        rng = np.random.default_rng(cfg.seed + 1)
        n_total = cfg.warmup_queries + cfg.queries
        centre_ids = rng.integers(0, len(data.centres), size=n_total)
        noise = rng.standard_normal((n_total, cfg.dim)).astype(np.float32) * (cfg.query_noise / np.sqrt(cfg.dim))
        query_vectors = _unit(data.centres[centre_ids] + noise).astype(np.float32)  # (n, D)
        zipf_rank = np.minimum(rng.zipf(1.3, size=(n_total, 2)), len(data.words)) - 1
        texts = [" ".join(data.words[i] for i in row[: 1 + (j % 2)]) for j, row in enumerate(zipf_rank)]
        k = cfg.k
        fetch = max(k, 40)

        def window_ids(hits) -> list[int]:
            return [int(h.video_id, 16) * cfg.windows_per_video + h.window_idx for h in hits]

        timings: dict[str, list[float]] = {name: [] for name in
                                            ("maxsim_ann", "pooled_ann", "fulltext", "hybrid", "search_av", "maxsim_exact", "pooled_exact")}  # fmt: skip
        recalls: dict[str, list[float]] = {"maxsim": [], "pooled": []}
        for i in range(n_total):
            timed = i >= cfg.warmup_queries
            qv = query_vectors[i]
            query = QueryVectors(vector=qv)

            t0 = time.perf_counter()
            ann_tokens = vector_window_hits(store, "tokens", qv[None, :], fetch)
            t1 = time.perf_counter()
            ann_pooled = vector_window_hits(store, HYBRID_VECTOR_COLUMN, qv, fetch)
            t2 = time.perf_counter()
            text_window_hits(store, texts[i], fetch)
            t3 = time.perf_counter()
            rank_windows(store, SearchRequest(text=texts[i], mode=MODE_HYBRID, k=k), query)
            t4 = time.perf_counter()
            search_encoded(store, SearchRequest(text=texts[i], mode=MODE_AV, k=k), query)
            t5 = time.perf_counter()
            exact_tokens = exact_maxsim_top(data.tokens, cfg.n_query_tokens, qv[None, :], k)
            t6 = time.perf_counter()
            exact_pooled = exact_cosine_top(data.pooled, qv, k)
            t7 = time.perf_counter()
            if not timed:
                continue
            for name, seconds in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6)):
                timings[name].append(seconds)
            recalls["maxsim"].append(len(set(window_ids(ann_tokens[:k])) & set(exact_tokens.tolist())) / k)
            recalls["pooled"].append(len(set(window_ids(ann_pooled[:k])) & set(exact_pooled.tolist())) / k)

        latency = {name: _percentiles_ms(values) for name, values in timings.items()}
        recall = {name: float(np.mean(values)) for name, values in recalls.items()}
        checks = {
            "maxsim_p95": latency["maxsim_ann"]["p95_ms"] <= cfg.target_maxsim_p95_ms,
            "pooled_p95": latency["pooled_ann"]["p95_ms"] <= cfg.target_other_p95_ms,
            "fulltext_p95": latency["fulltext"]["p95_ms"] <= cfg.target_other_p95_ms,
            "hybrid_p95": latency["hybrid"]["p95_ms"] <= cfg.target_other_p95_ms,
            "maxsim_recall": recall["maxsim"] >= cfg.target_recall,
            "pooled_recall": recall["pooled"] >= cfg.target_recall,
        }
        return {
            "config": {k_: v for k_, v in asdict(cfg).items() if k_ != "maintenance"},
            "maintenance": asdict(maintenance),
            "indexes": built,
            "write_s": write_s,
            "index_s": index_s,
            "latency": latency,
            "recall_at_k": recall,
            "ann_over_exact": {
                "maxsim": latency["maxsim_ann"]["p50_ms"] / max(latency["maxsim_exact"]["p50_ms"], 1e-9),
                "pooled": latency["pooled_ann"]["p50_ms"] / max(latency["pooled_exact"]["p50_ms"], 1e-9),
            },
            "checks": checks,
            "passed": all(checks.values()),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def format_report(result: dict) -> str:
    cfg, lat, rec = result["config"], result["latency"], result["recall_at_k"]
    ok = {True: "ok", False: "MISS"}
    checks = result["checks"]
    lines = [
        f"search bench: {cfg['windows']} windows, {cfg['n_query_tokens']} x D={cfg['dim']} tokens, {cfg['queries']} queries, "
        f"k={cfg['k']}",
        f"  table written in {result['write_s']:.1f} s, indexes {', '.join(result['indexes']) or 'none'} in {result['index_s']:.1f} s",
        f"  {'method':<24}{'p50 ms':>9}{'p95 ms':>9}",
    ]
    rows = [("MaxSim tokens (ANN)", "maxsim_ann", checks["maxsim_p95"]), ("pooled vector (ANN)", "pooled_ann", checks["pooled_p95"]),
            ("full text", "fulltext", checks["fulltext_p95"]), ("hybrid (pooled + text)", "hybrid", checks["hybrid_p95"]),
            ("whole av search", "search_av", None), ("MaxSim exact (numpy)", "maxsim_exact", None),
            ("pooled exact (numpy)", "pooled_exact", None)]  # fmt: skip
    for label, key, check in rows:
        mark = "" if check is None else f"   {ok[check]}"
        lines.append(f"  {label:<24}{lat[key]['p50_ms']:>9.2f}{lat[key]['p95_ms']:>9.2f}{mark}")
    lines.append(f"  recall@{cfg['k']} vs exact: MaxSim {rec['maxsim']:.3f} {ok[checks['maxsim_recall']]}, "
                 f"pooled {rec['pooled']:.3f} {ok[checks['pooled_recall']]} (target >= {cfg['target_recall']})")
    ratio = result["ann_over_exact"]
    lines.append(f"  ANN / exact latency (p50): MaxSim {ratio['maxsim']:.3f}, pooled {ratio['pooled']:.3f}")
    lines.append(f"  targets p95: MaxSim <= {cfg['target_maxsim_p95_ms']:g} ms, others <= {cfg['target_other_p95_ms']:g} ms: "
                 f"{'PASS' if result['passed'] else 'FAIL'}")
    return "\n".join(lines)


def run_from_args(args) -> dict:
    """Registry entry point for `favor bench search` (options: windows, queries, dim, k, seed)."""
    cfg = SearchBenchConfig(
        windows=getattr(args, "windows", SearchBenchConfig.windows),
        queries=getattr(args, "queries", SearchBenchConfig.queries),
        dim=getattr(args, "dim", SearchBenchConfig.dim),
        k=getattr(args, "k", SearchBenchConfig.k),
        seed=getattr(args, "seed", SearchBenchConfig.seed),
    )
    result = run_search_bench(cfg, progress=not getattr(args, "json", False))
    result["report"] = format_report(result)
    return result
