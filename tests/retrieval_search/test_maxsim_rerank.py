"""Exact MaxSim of candidate token sets (the re-rank step after pooled ANN), on hand-made vectors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from favor_ops.retrieval.maxsim_rerank import maxsim_scores, pooled_query, token_sets
from favor_ops.retrieval.search import SearchConfig, use_pooled_rerank, vector_window_hits
from tests.retrieval_search.planted_store import E, VIDEO_A


def test_maxsim_is_the_mean_over_query_vectors_of_the_best_token():
    tokens = np.array([[[1, 0], [0, 1]], [[0.6, 0.8], [-1, 0]]], dtype=np.float32)  # (2 windows, 2 tokens, D=2)
    assert maxsim_scores(tokens, np.array([[1.0, 0.0]])).tolist() == pytest.approx([1.0, 0.6])
    # two query vectors: window 0 has a perfect token for each (1.0), window 1: (0.6 + 0.8) / 2
    assert maxsim_scores(tokens, np.array([[1.0, 0.0], [0.0, 1.0]])).tolist() == pytest.approx([1.0, 0.7])
    # unnormalised inputs are cosines all the same
    assert maxsim_scores(3 * tokens, np.array([[2.0, 0.0]])).tolist() == pytest.approx([1.0, 0.6])


def test_pooled_query_is_the_normalised_mean():
    assert pooled_query(np.array([[1.0, 0.0], [0.0, 1.0]])).tolist() == pytest.approx([2**-0.5, 2**-0.5])
    assert pooled_query(np.array([0.0, 3.0])).tolist() == pytest.approx([0.0, 1.0])


def test_token_sets_honour_arrow_offsets():
    flat = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(12, dtype=np.float32)), 2)  # 6 tokens of D=2
    lists = pa.ListArray.from_arrays(pa.array([0, 2, 4, 6], pa.int32()), flat).slice(1, 2)  # rows 1 and 2
    out = token_sets(lists, 2, 2, 2)
    assert out.shape == (2, 2, 2) and out[0, 0].tolist() == [4.0, 5.0] and out[1, 1].tolist() == [10.0, 11.0]


def test_strategy_choice():
    assert use_pooled_rerank({"pooled": "IVF_PQ"}) and not use_pooled_rerank({"pooled": "IVF_PQ", "tokens": "IVF_PQ"})
    assert not use_pooled_rerank({})  # no index at all: exact multivector scan
    assert use_pooled_rerank({}, SearchConfig(maxsim_strategy="pooled_rerank"))
    assert not use_pooled_rerank({"pooled": "IVF_PQ"}, SearchConfig(maxsim_strategy="multivector"))
    with pytest.raises(ValueError):
        use_pooled_rerank({}, SearchConfig(maxsim_strategy="fast"))


def test_forced_rerank_matches_the_multivector_search(planted_store):
    query = np.stack([E[0], E[0]])
    exact = vector_window_hits(planted_store, "tokens", query, 2)
    reranked = vector_window_hits(planted_store, "tokens", query, 2,
                                  cfg=SearchConfig(maxsim_strategy="pooled_rerank", maxsim_rerank_candidates=1000))
    assert [(h.video_id, h.window_idx) for h in reranked] == [(h.video_id, h.window_idx) for h in exact]
    assert [(h.video_id, h.window_idx) for h in reranked] == [(VIDEO_A, 0), (VIDEO_A, 1)]
    assert [h.score for h in reranked] == pytest.approx([h.score for h in exact], abs=1e-5)
    assert [h.t_start for h in reranked] == [h.t_start for h in exact] and reranked[0].transcript == exact[0].transcript
