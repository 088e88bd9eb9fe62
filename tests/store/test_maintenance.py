import time

import numpy as np
import pyarrow as pa
import pytest

from favor_ops.store.feature_store import FeatureStore
from favor_ops.store.maintenance import MaintenanceConfig, compact, ensure_indexes, run_maintenance
from favor_ops.store.schema import WINDOWS, conform

D, Q = 8, 4


def windows_table(store, tokens, transcripts):
    n = len(tokens)
    rows = [{"video_id": f"v{i:03d}", "window_idx": 0, "t_start": 0.0, "t_end": 5.0,
             "tokens": tokens[i].tolist(), "pooled": tokens[i].mean(0).tolist(),
             "audio_vec": tokens[i][0].tolist(), "visual_vec": tokens[i][1].tolist(),
             "has_audio": True, "has_video": True, "transcript": transcripts[i], "model_version": "m1"}
            for i in range(n)]
    return conform(rows, store.schema(WINDOWS), table=WINDOWS)


def maxsim_distance(query, docs):
    """LanceDB's cosine multivector distance: sum over query vectors of (1 - max cosine)."""
    qn = query / np.linalg.norm(query, axis=1, keepdims=True)
    dn = docs / np.linalg.norm(docs, axis=2, keepdims=True)
    return (1.0 - np.einsum("qd,ntd->nqt", qn, dn).max(axis=2)).sum(axis=1)


@pytest.fixture
def filled(tmp_path):
    store = FeatureStore.open(str(tmp_path / "db"), dim=D, n_query_tokens=Q)
    rng = np.random.default_rng(7)
    tokens = rng.normal(size=(300, Q, D)).astype(np.float32)
    texts = [f"a gray square number {i}" for i in range(300)]
    texts[123] = "someone says banana while a red circle moves"
    store.table(WINDOWS).add(windows_table(store, tokens, texts))
    return store, tokens


def test_multivector_maxsim_cosine_finds_planted_row(filled):
    store, tokens = filled
    # query: two of row 42's tokens, slightly perturbed
    query = tokens[42][[0, 2]] + 0.01
    expected = maxsim_distance(query, tokens)
    assert int(np.argmin(expected)) == 42
    flat = store.search_windows(query, k=3)
    assert flat["video_id"].tolist()[0] == "v042"
    np.testing.assert_allclose(flat["_distance"].to_numpy(), np.sort(expected)[:3], rtol=1e-4, atol=1e-5)

    built = ensure_indexes(store, MaintenanceConfig(ann_min_rows=300, rows_per_partition=150, pq_num_sub_vectors=2))
    assert sorted(built) == ["pooled_idx", "tokens_idx", "transcript_idx"]
    types = {i.columns[0]: i.index_type for i in store.table(WINDOWS).list_indices()}
    assert types == {"pooled": "IvfPq", "tokens": "IvfPq", "transcript": "FTS"}
    indexed = store.search_windows(query, k=3, nprobes=2)
    assert indexed["video_id"].tolist()[0] == "v042"
    pooled = store.search_windows(tokens[42].mean(0), k=1, column="pooled", nprobes=2)
    assert pooled["video_id"].tolist() == ["v042"]


def test_small_table_gets_fts_but_no_ann_and_text_search_works(filled):
    store, _ = filled
    built = ensure_indexes(store, MaintenanceConfig(ann_min_rows=10_000))
    assert built == ["transcript_idx"]
    hits = store.search_transcripts("banana", k=5)
    assert hits["video_id"].tolist() == ["v123"]
    assert hits["transcript"].tolist() == ["someone says banana while a red circle moves"]
    # nothing missing any more: a second call builds nothing and keeps the version
    version = store.table_version(WINDOWS)
    assert ensure_indexes(store, MaintenanceConfig(ann_min_rows=10_000)) == []
    assert store.table_version(WINDOWS) == version


def test_maintenance_on_unchanged_store_keeps_versions(filled):
    store, tokens = filled
    cfg = MaintenanceConfig(ann_min_rows=10_000)
    run_maintenance(store, cfg, changed_tables=[WINDOWS])
    versions = store.table_versions()
    report = run_maintenance(store, cfg)  # every table, nothing to do
    assert report.indexes_built == [] and report.compacted_tables == []
    assert store.table_versions() == versions
    # new rows after the FTS index: optimize folds them into the index, text search finds them
    extra = windows_table(store, tokens[:1], ["a dog barks twice"])
    extra = extra.set_column(0, "video_id", pa.array(["late"]))
    store.table(WINDOWS).add(extra)
    assert compact(store, [WINDOWS], cfg) == [WINDOWS]
    assert store.search_transcripts("dog", k=3)["video_id"].tolist() == ["late"]
    index = next(i for i in store.table(WINDOWS).list_indices() if i.columns == ["transcript"])
    assert store.table(WINDOWS).index_stats(index.name).num_unindexed_rows == 0


def test_cleanup_keeps_newest_versions(tmp_path):
    store = FeatureStore.open(str(tmp_path / "db"), dim=D, n_query_tokens=Q)
    table = store.table(WINDOWS)
    rng = np.random.default_rng(0)
    for i in range(4):  # versions 2..5, spaced so the cutoff is unambiguous
        time.sleep(0.3)
        batch = windows_table(store, rng.normal(size=(1, Q, D)).astype(np.float32), [f"t{i}"])
        table.add(batch.set_column(0, "video_id", pa.array([f"x{i}"])))
    assert [v["version"] for v in table.list_versions()] == [1, 2, 3, 4, 5]
    compact(store, [WINDOWS], MaintenanceConfig(keep_versions=2, version_cleanup_margin_s=0.1))
    kept = [v["version"] for v in table.list_versions()]
    assert kept[:2] == [4, 5] and all(v > 5 for v in kept[2:])
    assert store.counts()["windows"] == 4


def test_large_table_skips_the_tokens_index_and_maxsim_reranks_pooled_candidates(filled):
    from favor_ops.retrieval.search import SearchConfig, ann_index_types, use_pooled_rerank, vector_window_hits

    store, tokens = filled
    cfg = MaintenanceConfig(ann_min_rows=300, rows_per_partition=150, pq_num_sub_vectors=2, tokens_ann_max_rows=200)
    assert sorted(ensure_indexes(store, cfg)) == ["pooled_idx", "transcript_idx"]  # 300 rows > 200: no tokens index
    assert use_pooled_rerank(ann_index_types(store))  # auto: pooled indexed, tokens not
    query = tokens[42][[0, 2]] + 0.01
    expected = maxsim_distance(query, tokens)
    every_row = SearchConfig(maxsim_rerank_candidates=300)  # all rows are candidates: the re-rank is exact
    hits = vector_window_hits(store, "tokens", query, 3, cfg=every_row)
    assert [h.video_id for h in hits] == [f"v{i:03d}" for i in np.argsort(expected)[:3]]
    np.testing.assert_allclose([h.score for h in hits], 1.0 - np.sort(expected)[:3] / len(query), rtol=1e-5, atol=1e-6)
    assert vector_window_hits(store, "tokens", query, 1)[0].video_id == "v042"  # default 200 candidates
