"""Search benchmark: LanceDB ANN search against an exact numpy scan of the same synthetic table.

    favor bench search --windows 100000 [--queries 200] [--dim 128] [--tokens 32] [--k 10] [--seed 0]
                       [--methods maxsim_ann,pooled_ann,fulltext,hybrid,search_av] [--rerank-candidates 200,1000]

Builds, in a temporary directory, a `windows` table of `--windows` rows with the store's real schema:
clustered random vectors (each window mixes `concepts_per_window` of `--clusters` cluster centres; its
`--tokens` x D tokens are noisy copies of them, `pooled` is their normalised mean) and transcripts of
Zipf-distributed words from a generated word list. Every write batch draws from its own seeded generator,
so the vectors can be regenerated batch by batch: the bench never has to hold all token vectors in memory
(it holds them for the per-query exact MaxSim timing only when they fit `exact_tokens_budget_mib`).
Indexes come from favor_ops.store.maintenance (IVF_PQ on `tokens` and `pooled`, FTS on `transcript`),
exactly as the index job builds them; when no `--methods` entry searches `tokens`, its index (the costly
one: IVF partitions over windows x tokens vectors) is not built.

Then N text-like queries (a unit vector near one cluster centre + one or two words) run through
favor_ops.retrieval.search, one pass over all queries per method (after 10 untimed warm-up queries), and report
p50/p95 latency of
- MaxSim over `tokens` (ANN, av mode), pooled-vector ANN, full text, hybrid (pooled + text, RRF),
  and the whole av search (filters, ANN, span merging, uri lookup) -- each selectable with --methods;
- pooled ANN + exact MaxSim re-rank (favor_ops.retrieval.search.pooled_rerank_window_hits): the C windows
  nearest on `pooled` (IVF_PQ) come back with their token sets in the same LanceDB query and are re-ranked
  by exact MaxSim in numpy; one row per --rerank-candidates C. Above MaintenanceConfig.tokens_ann_max_rows
  (500k windows) the `tokens` index is not built and the MaxSim rows (`maxsim_ann`, `search_av`) take
  this path with SearchConfig's default C, as `favor search` does;
- recall@k of each window list against an exact brute-force MaxSim / cosine scan in numpy of the same
  vectors (the ground truth is computed in one batched pass before the timed queries), and the latency
  ratio ANN / exact scan (per-query exact MaxSim only when the tokens fit in memory);
- the process RSS: before the queries and its peak while they run (and the peaks while writing, indexing
  and computing the ground truth), next to the size of the arrays the bench itself holds for the exact scans.
Targets (2 cores, 100k windows): p95 <= 30 ms MaxSim, <= 15 ms pooled / full text / hybrid,
recall@10 >= 0.95; pooled ANN + re-rank: p95 <= 25 ms with recall@10 >= 0.95 (the issue's target at 1M).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa

from favor_ops.store.maintenance import MaintenanceConfig
from favor_ops.store.schema import conform


METHODS: tuple[str, ...] = ("maxsim_ann", "pooled_ann", "fulltext", "hybrid", "search_av")
TOKEN_METHODS = frozenset({"maxsim_ann", "search_av"})  # methods that search the `tokens` multivector
MIB = 1024.0 * 1024.0


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
    methods: tuple[str, ...] = METHODS  # ranked lists timed per query (see METHODS)
    rerank_candidates: tuple[int, ...] = (200, 1000)  # pooled ANN + exact MaxSim re-rank: candidates C per row
    exact_tokens_budget_mib: float = 2048.0  # hold the tokens for per-query exact MaxSim timing up to this size
    target_maxsim_p95_ms: float = 30.0
    target_other_p95_ms: float = 15.0
    target_rerank_p95_ms: float = 25.0
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
    tokens: np.ndarray | None  # (N * Q, D) float32 unit rows (exact-scan copy), None when over the memory budget
    pooled: np.ndarray  # (N, D) float32 unit
    words: list[str]


def make_centres(cfg: SearchBenchConfig) -> np.ndarray:
    rng = np.random.default_rng([cfg.seed, 0])
    return _unit(rng.standard_normal((cfg.n_clusters, cfg.dim)).astype(np.float32))


def batch_starts(cfg: SearchBenchConfig) -> range:
    return range(0, cfg.windows, cfg.write_batch_rows)


def batch_vectors(cfg: SearchBenchConfig, centres: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Tokens (n, Q, D) and pooled (n, D) of the write batch starting at window `start`; deterministic in
    (seed, start), so the exact scan can regenerate them instead of keeping them."""
    rng = np.random.default_rng([cfg.seed, 1, start])
    d, q = cfg.dim, cfg.n_query_tokens
    n = min(cfg.write_batch_rows, cfg.windows - start)
    concepts = rng.integers(0, cfg.n_clusters, size=(n, cfg.concepts_per_window))  # (n, c)
    which = rng.integers(0, cfg.concepts_per_window, size=(n, q))  # token -> concept slot
    tokens = centres[np.take_along_axis(concepts, which, axis=1)]  # (n, Q, D)
    tokens += (cfg.token_noise / np.sqrt(d)) * rng.standard_normal((n, q, d), dtype=np.float32)
    tokens /= np.maximum(np.linalg.norm(tokens, axis=-1, keepdims=True), 1e-12)
    pooled = _unit(tokens.mean(axis=1)).astype(np.float32)  # (n, D)
    return tokens, pooled


def tokens_bytes(cfg: SearchBenchConfig) -> int:
    return cfg.windows * cfg.n_query_tokens * cfg.dim * 4


def synthesize(cfg: SearchBenchConfig, store, progress: bool = False) -> SyntheticTable:
    """Write the synthetic windows + videos rows into `store`; returns the pooled vectors (and the tokens when
    they fit cfg.exact_tokens_budget_mib) for the exact scans."""
    d, q = cfg.dim, cfg.n_query_tokens
    centres = make_centres(cfg)
    words = word_list(cfg.vocabulary_words)
    zipf = 1.0 / np.arange(1, len(words) + 1)
    zipf /= zipf.sum()
    keep_tokens = tokens_bytes(cfg) <= cfg.exact_tokens_budget_mib * MIB
    tokens_all = np.empty((cfg.windows * q, d), dtype=np.float32) if keep_tokens else None
    pooled_all = np.empty((cfg.windows, d), dtype=np.float32)
    schema = store.schema("windows")
    table = store.table("windows")
    iterator = batch_starts(cfg)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="bench search: writing windows", unit="batch", file=sys.stderr)
    for start in iterator:
        tokens, pooled = batch_vectors(cfg, centres, start)
        n = len(tokens)
        if tokens_all is not None:
            tokens_all[start * q:(start + n) * q] = tokens.reshape(n * q, d)
        pooled_all[start:start + n] = pooled
        ids = np.arange(start, start + n)
        video_idx, window_idx = ids // cfg.windows_per_video, ids % cfg.windows_per_video
        word_ids = np.random.default_rng([cfg.seed, 2, start]).choice(len(words), size=(n, cfg.words_per_window), p=zipf)
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
        })  # fmt: skip
        table.add(conform(batch, schema, table="windows"))  # columns in schema order, absent ones (frame vectors) null
        del tokens, batch, token_lists, flat_tokens
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


def exact_ground_truth(cfg: SearchBenchConfig, data: SyntheticTable, queries: np.ndarray, k: int) -> dict:
    """Exact top-k of every query in one batched pass: MaxSim over the tokens (regenerated batch by batch
    unless held) and cosine over the pooled vectors. Returns ids (nq, k) and scores (nq, k), best first."""
    nq, q = len(queries), cfg.n_query_tokens
    best_ids = np.full((nq, 0), -1, dtype=np.int64)
    best_scores = np.full((nq, 0), -np.inf, dtype=np.float32)
    for start in batch_starts(cfg):
        if data.tokens is not None:
            n = min(cfg.write_batch_rows, cfg.windows - start)
            tokens = data.tokens[start * q:(start + n) * q]
        else:
            tokens, _ = batch_vectors(cfg, data.centres, start)
            n = len(tokens)
            tokens = tokens.reshape(n * q, cfg.dim)
        per_window = (tokens @ queries.T).reshape(n, q, nq).max(axis=1).T  # (nq, n): single-vector queries
        ids = np.concatenate([best_ids, np.broadcast_to(np.arange(start, start + n), (nq, n))], axis=1)
        scores = np.concatenate([best_scores, per_window], axis=1)
        keep = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_ids, best_scores = np.take_along_axis(ids, keep, 1), np.take_along_axis(scores, keep, 1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    maxsim_ids, maxsim_scores = np.take_along_axis(best_ids, order, 1), np.take_along_axis(best_scores, order, 1)
    pooled_ids = np.stack([exact_cosine_top(data.pooled, query, k) for query in queries])
    return {"maxsim_ids": maxsim_ids, "maxsim_scores": maxsim_scores, "pooled_ids": pooled_ids}


class RssSampler:
    """Peak RSS of this process, per named phase, sampled in a daemon thread (psutil)."""

    def __init__(self, interval_s: float = 0.05):
        import psutil

        self._process = psutil.Process(os.getpid())
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="favor-bench-rss", daemon=True)
        self.phase = "start"
        self.peaks: dict[str, int] = {}
        self.at_phase_start: dict[str, int] = {}

    def rss(self) -> int:
        return int(self._process.memory_info().rss)

    def enter(self, phase: str) -> None:
        rss = self.rss()
        self.phase = phase
        self.at_phase_start[phase] = rss
        self.peaks[phase] = max(self.peaks.get(phase, 0), rss)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            rss, phase = self.rss(), self.phase
            self.peaks[phase] = max(self.peaks.get(phase, 0), rss)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        rss = self.rss()
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), rss)


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
        DEFAULT_SEARCH_CONFIG,
        HYBRID_VECTOR_COLUMN,
        MODE_AV,
        MODE_HYBRID,
        SearchConfig,
        SearchRequest,
        ann_index_types,
        pooled_rerank_window_hits,
        rank_windows,
        search_encoded,
        text_window_hits,
        use_pooled_rerank,
        vector_window_hits,
    )
    from favor_ops.store.feature_store import FeatureStore
    from favor_ops.store.maintenance import _ann_config, ensure_indexes
    from favor_ops.store.schema import POOLED_COLUMN, WINDOWS

    if cfg.windows < 1000:
        raise ValueError("--windows must be >= 1000 (IVF_PQ needs enough rows to train)")
    if cfg.queries < 1:
        raise ValueError("--queries must be >= 1")
    unknown = [m for m in cfg.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown --methods {', '.join(unknown)}; expected some of {', '.join(METHODS)}")
    if any(c < cfg.k for c in cfg.rerank_candidates):
        raise ValueError(f"--rerank-candidates must each be >= k ({cfg.k})")
    say = (lambda message: print(f"bench search: {message}", file=sys.stderr, flush=True)) if progress else (lambda m: None)
    root = tempfile.mkdtemp(prefix="favor-search-bench-", dir=workdir)
    rss = RssSampler()
    try:
        with rss:
            rss.enter("write")
            store = FeatureStore.open(root, dim=cfg.dim, n_query_tokens=cfg.n_query_tokens)
            store.ensure_tables()
            started = time.perf_counter()
            data = synthesize(cfg, store, progress=progress)
            write_s = time.perf_counter() - started
            say(f"wrote {cfg.windows} windows in {write_s:.1f} s; building indexes")
            rss.enter("index")
            maintenance = cfg.maintenance
            if maintenance.ann_min_rows > cfg.windows:
                maintenance = MaintenanceConfig(**{**asdict(maintenance), "ann_min_rows": cfg.windows})
            started = time.perf_counter()
            if TOKEN_METHODS & set(cfg.methods):
                built = ensure_indexes(store, maintenance)
            else:  # nothing searches `tokens`: the pooled + FTS indexes only, configured as ensure_indexes does
                store.table(WINDOWS).create_index(POOLED_COLUMN, config=_ann_config(maintenance, cfg.windows, cfg.dim),
                                                  replace=True, name=f"{POOLED_COLUMN}_idx")  # fmt: skip
                built = [f"{POOLED_COLUMN}_idx"]
                built += ensure_indexes(store, MaintenanceConfig(**{**asdict(maintenance), "ann_min_rows": cfg.windows + 1}))
            index_s = time.perf_counter() - started
            say(f"indexes {built} in {index_s:.1f} s; exact ground truth")

            rss.enter("ground_truth")
            rng = np.random.default_rng(cfg.seed + 1)
            n_total = cfg.warmup_queries + cfg.queries
            centre_ids = rng.integers(0, len(data.centres), size=n_total)
            noise = rng.standard_normal((n_total, cfg.dim)).astype(np.float32) * (cfg.query_noise / np.sqrt(cfg.dim))
            query_vectors = _unit(data.centres[centre_ids] + noise).astype(np.float32)  # (n, D)
            zipf_rank = np.minimum(rng.zipf(1.3, size=(n_total, 2)), len(data.words)) - 1
            texts = [" ".join(data.words[i] for i in row[: 1 + (j % 2)]) for j, row in enumerate(zipf_rank)]
            k = cfg.k
            fetch = max(k, 40)
            started = time.perf_counter()
            truth = exact_ground_truth(cfg, data, query_vectors, k)
            truth_s = time.perf_counter() - started
            say(f"ground truth in {truth_s:.1f} s; running {cfg.queries} queries per method")

            def recall_at_k(hits, exact_ids: np.ndarray) -> float:
                ids = {int(h.video_id, 16) * cfg.windows_per_video + h.window_idx for h in hits[:k]}
                return len(ids & set(exact_ids.tolist())) / k

            methods = [m for m in METHODS if m in cfg.methods]
            timed = range(cfg.warmup_queries, n_total)
            timings: dict[str, list[float]] = {}
            rerank_times: dict[int, list[float]] = {}
            rerank_recalls: dict[int, list[float]] = {}
            rerank_score_ratio: dict[int, list[float]] = {}
            recalls: dict[str, list[float]] = {}
            index_types = ann_index_types(store)
            maxsim_path = "pooled_rerank" if use_pooled_rerank(index_types) else "multivector"
            rss.enter("queries")

            def timed_pass(run_query) -> tuple[list[float], list]:
                """One pass of the queries through one method -> seconds and results of the timed (non-warm-up)
                queries, in query order."""
                seconds, results = [], []
                for i in range(n_total):
                    t0 = time.perf_counter()
                    result = run_query(i)
                    if i >= cfg.warmup_queries:
                        seconds.append(time.perf_counter() - t0)
                        results.append(result)
                return seconds, results

            def run_method(name: str, i: int):
                qv = query_vectors[i]
                if name == "maxsim_ann":
                    return vector_window_hits(store, "tokens", qv[None, :], fetch)
                if name == "pooled_ann":
                    return vector_window_hits(store, HYBRID_VECTOR_COLUMN, qv, fetch)
                if name == "fulltext":
                    return text_window_hits(store, texts[i], fetch)
                if name == "hybrid":
                    return rank_windows(store, SearchRequest(text=texts[i], mode=MODE_HYBRID, k=k), QueryVectors(vector=qv))
                return search_encoded(store, SearchRequest(text=texts[i], mode=MODE_AV, k=k), QueryVectors(vector=qv))

            # One pass per method, so no method runs right after another's work: the exact scans' BLAS threads
            # keep spinning for a while after a large matmul, which slowed the next LanceDB query when the methods
            # were interleaved query by query (a server runs its own searches only).
            for name in methods:
                timings[name], hits = timed_pass(lambda i, name=name: run_method(name, i))
                truth_ids = {"maxsim_ann": ("maxsim", "maxsim_ids"), "pooled_ann": ("pooled", "pooled_ids")}.get(name)
                if truth_ids:
                    recall_name, truth_key = truth_ids
                    recalls[recall_name] = [recall_at_k(h, truth[truth_key][i]) for h, i in zip(hits, timed)]
            for candidates in cfg.rerank_candidates:
                rerank_times[candidates], reranked = timed_pass(
                    lambda i, c=candidates: pooled_rerank_window_hits(store, query_vectors[i][None, :], k,
                                                                      index_types=index_types,
                                                                      cfg=SearchConfig(maxsim_rerank_candidates=c)))
                rerank_recalls[candidates] = [recall_at_k(h, truth["maxsim_ids"][i]) for h, i in zip(reranked, timed)]
                rerank_score_ratio[candidates] = [
                    float(np.mean([x.score for x in h]) / truth["maxsim_scores"][i].mean()) for h, i in zip(reranked, timed)
                ]
            if data.tokens is not None:
                timings["maxsim_exact"], _ = timed_pass(
                    lambda i: exact_maxsim_top(data.tokens, cfg.n_query_tokens, query_vectors[i][None, :], k))
            timings["pooled_exact"], _ = timed_pass(lambda i: exact_cosine_top(data.pooled, query_vectors[i], k))
        rss_peaks = {phase: value / MIB for phase, value in rss.peaks.items()}
        rss_before_queries = rss.at_phase_start.get("queries", 0) / MIB

        latency = {name: _percentiles_ms(values) for name, values in timings.items()}
        recall = {name: float(np.mean(values)) for name, values in recalls.items()}
        rerank = []
        for candidates in cfg.rerank_candidates:
            row = {"candidates": candidates, **_percentiles_ms(rerank_times[candidates]),
                   "recall_at_k": float(np.mean(rerank_recalls[candidates])),
                   "score_ratio": float(np.mean(rerank_score_ratio[candidates]))}  # fmt: skip
            row["meets_target"] = row["p95_ms"] <= cfg.target_rerank_p95_ms and row["recall_at_k"] >= cfg.target_recall
            rerank.append(row)
        checks = {}
        if "maxsim_ann" in latency:
            checks["maxsim_p95"] = latency["maxsim_ann"]["p95_ms"] <= cfg.target_maxsim_p95_ms
        for name in ("pooled_ann", "fulltext", "hybrid"):
            if name in latency:
                checks[f"{name.replace('_ann', '')}_p95"] = latency[name]["p95_ms"] <= cfg.target_other_p95_ms
        for name in recall:
            checks[f"{name}_recall"] = recall[name] >= cfg.target_recall
        if rerank:
            checks["pooled_rerank"] = any(row["meets_target"] for row in rerank)
        ann_over_exact = {}
        if "maxsim_ann" in latency and "maxsim_exact" in latency:
            ann_over_exact["maxsim"] = latency["maxsim_ann"]["p50_ms"] / max(latency["maxsim_exact"]["p50_ms"], 1e-9)
        if "pooled_ann" in latency:
            ann_over_exact["pooled"] = latency["pooled_ann"]["p50_ms"] / max(latency["pooled_exact"]["p50_ms"], 1e-9)
        bench_arrays = data.pooled.nbytes + (data.tokens.nbytes if data.tokens is not None else 0)
        return {
            "config": {k_: v for k_, v in asdict(cfg).items() if k_ != "maintenance"},
            "maintenance": asdict(maintenance),
            "indexes": built,
            "maxsim_path": maxsim_path,
            "search_rerank_candidates": DEFAULT_SEARCH_CONFIG.maxsim_rerank_candidates,
            "write_s": write_s,
            "index_s": index_s,
            "ground_truth_s": truth_s,
            "table_bytes": _dir_bytes(root),
            "latency": latency,
            "recall_at_k": recall,
            "pooled_rerank": rerank,
            "ann_over_exact": ann_over_exact,
            "memory": {
                "rss_before_queries_mib": rss_before_queries,
                "rss_peak_queries_mib": rss_peaks.get("queries", 0.0),
                "rss_peak_mib": rss_peaks,
                "bench_exact_arrays_mib": bench_arrays / MIB,
                "tokens_held_for_exact_timing": data.tokens is not None,
            },
            "checks": checks,
            "passed": all(checks.values()),
            "load_average_1m": os.getloadavg()[0],
            "cpu_count": os.cpu_count(),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _dir_bytes(path: str) -> int:
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(directory, name))
            except OSError:
                pass
    return total


def format_report(result: dict) -> str:
    cfg, lat, rec = result["config"], result["latency"], result["recall_at_k"]
    ok = {True: "ok", False: "MISS"}
    checks = result["checks"]
    mem = result["memory"]
    lines = [
        f"search bench: {cfg['windows']} windows, {cfg['n_query_tokens']} x D={cfg['dim']} tokens, {cfg['n_clusters']} clusters, "
        f"{cfg['queries']} queries, k={cfg['k']}",
        f"  table written in {result['write_s']:.1f} s ({result['table_bytes'] / 2**30:.2f} GiB on disk), indexes "
        f"{', '.join(result['indexes']) or 'none'} in {result['index_s']:.1f} s, exact ground truth in {result['ground_truth_s']:.1f} s",
        f"  {'method':<34}{'p50 ms':>9}{'p95 ms':>9}{'recall@' + str(cfg['k']):>11}",
    ]
    maxsim_label = ("MaxSim tokens (ANN)" if result.get("maxsim_path", "multivector") == "multivector" else
                    f"MaxSim (pooled ANN C={result['search_rerank_candidates']} + rerank)")
    rows = [(maxsim_label, "maxsim_ann", checks.get("maxsim_p95"), rec.get("maxsim")),
            ("pooled vector (ANN)", "pooled_ann", checks.get("pooled_p95"), rec.get("pooled")),
            ("full text", "fulltext", checks.get("fulltext_p95"), None),
            ("hybrid (pooled + text)", "hybrid", checks.get("hybrid_p95"), None),
            ("whole av search", "search_av", None, None), ("MaxSim exact (numpy)", "maxsim_exact", None, None),
            ("pooled exact (numpy)", "pooled_exact", None, None)]  # fmt: skip
    for label, key, check, recall in rows:
        if key not in lat:
            continue
        mark = "" if check is None else f"   {ok[check]}"
        recall_text = f"{recall:>11.3f}" if recall is not None else " " * 11
        lines.append(f"  {label:<34}{lat[key]['p50_ms']:>9.2f}{lat[key]['p95_ms']:>9.2f}{recall_text}{mark}")
    for row in result.get("pooled_rerank", []):
        label = f"pooled ANN C={row['candidates']} + MaxSim rerank"
        lines.append(f"  {label:<34}{row['p50_ms']:>9.2f}{row['p95_ms']:>9.2f}{row['recall_at_k']:>11.3f}   "
                     f"{ok[row['meets_target']]} (returned / exact top-{cfg['k']} MaxSim {row['score_ratio']:.4f})")
    if not result.get("pooled_rerank") and "maxsim_exact" not in lat:
        lines.append("  (no per-query exact MaxSim: the tokens exceed the bench's memory budget)")
    lines.append(f"  recall@{cfg['k']} is against an exact numpy MaxSim (tokens) / cosine (pooled) scan; target >= "
                 f"{cfg['target_recall']}")
    ratio = result["ann_over_exact"]
    if ratio:
        lines.append("  ANN / exact latency (p50): " + ", ".join(f"{name} {value:.3f}" for name, value in ratio.items()))
    lines.append(f"  process RSS: {mem['rss_before_queries_mib']:.0f} MiB before the queries, peak {mem['rss_peak_queries_mib']:.0f} "
                 f"MiB while they ran (of which {mem['bench_exact_arrays_mib']:.0f} MiB are the bench's exact-scan arrays); "
                 f"peaks writing {mem['rss_peak_mib'].get('write', 0):.0f}, indexing {mem['rss_peak_mib'].get('index', 0):.0f}, "
                 f"ground truth {mem['rss_peak_mib'].get('ground_truth', 0):.0f} MiB")
    lines.append(f"  targets p95: MaxSim <= {cfg['target_maxsim_p95_ms']:g} ms, others <= {cfg['target_other_p95_ms']:g} ms, "
                 f"pooled ANN + rerank <= {cfg['target_rerank_p95_ms']:g} ms: {'PASS' if result['passed'] else 'FAIL'}"
                 f"  (load average {result['load_average_1m']:.1f} on {result['cpu_count']} cores)")
    return "\n".join(lines)


def _int_list(text, name: str) -> tuple[int, ...]:
    if isinstance(text, (list, tuple)):
        return tuple(int(v) for v in text)
    try:
        return tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{name} must be comma-separated whole numbers, got {text!r}") from None


def run_from_args(args) -> dict:
    """Registry entry point for `favor bench search` (options: windows, queries, dim, tokens, clusters, k, seed,
    methods, rerank_candidates)."""
    defaults = SearchBenchConfig()
    methods = getattr(args, "methods", None)
    candidates = getattr(args, "rerank_candidates", None)
    cfg = SearchBenchConfig(
        windows=getattr(args, "windows", defaults.windows),
        queries=getattr(args, "queries", defaults.queries),
        dim=getattr(args, "dim", defaults.dim),
        n_query_tokens=getattr(args, "tokens", None) or defaults.n_query_tokens,
        n_clusters=getattr(args, "clusters", None) or defaults.n_clusters,
        k=getattr(args, "k", defaults.k),
        seed=getattr(args, "seed", defaults.seed),
        methods=defaults.methods if methods is None else tuple(m.strip() for m in methods.split(",") if m.strip()),
        rerank_candidates=defaults.rerank_candidates if candidates is None else _int_list(candidates, "--rerank-candidates"),
    )
    result = run_search_bench(cfg, progress=not getattr(args, "json", False))
    result["report"] = format_report(result)
    return result
