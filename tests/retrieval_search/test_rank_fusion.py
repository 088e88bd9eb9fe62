"""Reciprocal-rank fusion on hand-made lists."""

from __future__ import annotations

import pytest

from favor_ops.retrieval.rank_fusion import reciprocal_rank_fusion


def test_rrf_scores_and_order():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]], k=60)
    assert [f.key for f in fused] == ["a", "c", "b", "d"]
    scores = {f.key: f.score for f in fused}
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    assert scores["d"] == pytest.approx(1 / 63)
    assert {f.key: f.ranks for f in fused} == {"a": (1, 2), "c": (3, 1), "b": (2, None), "d": (None, 3)}


def test_rrf_k_zero_weights_limit_and_duplicates():
    fused = reciprocal_rank_fusion([["x", "y", "x"], ["y"]], k=0, weights=[1.0, 0.5], limit=1)
    # x: 1/1 ; y: 1/2 + 0.5/1 = 1.0 -> tie, first appearance (x) wins; the duplicate x adds nothing
    assert [(f.key, f.score) for f in fused] == [("x", 1.0)]


def test_rrf_rejects_bad_arguments():
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], k=-1)
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0])
    assert reciprocal_rank_fusion([]) == []
