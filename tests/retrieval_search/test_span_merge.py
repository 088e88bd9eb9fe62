"""Adjacent or overlapping windows of one video merge into one span (score = max)."""

from __future__ import annotations

from favor_ops.retrieval.search import WindowHit, fuse_window_hits, merge_adjacent


def w(video, idx, t0, t1, score, text=""):
    return WindowHit(video, idx, t0, t1, score, text)


def test_touching_windows_merge_and_keep_max_score():
    ranked = [w("a", 1, 5, 10, 0.9, "two"), w("b", 0, 0, 5, 0.8), w("a", 0, 0, 5, 0.7, "one"), w("a", 3, 15, 20, 0.6)]
    hits = merge_adjacent(ranked)
    assert [(h.video_id, h.t_start, h.t_end, h.score, h.window_indices, h.transcript) for h in hits] == [
        ("a", 0, 10, 0.9, (0, 1), "one two"),
        ("b", 0, 5, 0.8, (0,), ""),
        ("a", 15, 20, 0.6, (3,), ""),
    ]


def test_overlapping_windows_merge_and_a_window_can_bridge_two_spans():
    ranked = [w("a", 0, 0, 4, 0.5), w("a", 2, 8, 12, 0.9), w("a", 1, 3, 9, 0.1)]  # window 1 overlaps both
    hits = merge_adjacent(ranked)
    assert [(h.t_start, h.t_end, h.score, h.window_indices) for h in hits] == [(0, 12, 0.9, (0, 1, 2))]


def test_gap_keeps_spans_apart_and_other_videos_never_merge():
    ranked = [w("a", 0, 0, 5, 0.9), w("a", 2, 5.5, 10, 0.8), w("b", 1, 5, 10, 0.7)]
    hits = merge_adjacent(ranked, gap_s=0.1)
    assert [(h.video_id, h.t_start, h.t_end) for h in hits] == [("a", 0, 5), ("a", 5.5, 10), ("b", 5, 10)]
    hits = merge_adjacent(ranked, gap_s=0.5)
    assert [(h.video_id, h.t_start, h.t_end) for h in hits] == [("a", 0, 10), ("b", 5, 10)]


def test_max_spans_stops_before_low_ranked_windows_are_absorbed():
    ranked = [w("a", 0, 0, 5, 0.9), w("b", 0, 0, 5, 0.8), w("a", 1, 5, 10, 0.1)]
    hits = merge_adjacent(ranked, max_spans=1)
    assert [(h.video_id, h.t_end, h.window_indices) for h in hits] == [("a", 5, (0,))]
    hits = merge_adjacent(ranked, max_spans=2)
    assert [(h.video_id, h.t_end, h.window_indices) for h in hits] == [("a", 10, (0, 1)), ("b", 5, (0,))]


def test_duplicate_windows_count_once():
    hits = merge_adjacent([w("a", 0, 0, 5, 0.9), w("a", 0, 0, 5, 0.3)])
    assert [(h.window_indices, h.score) for h in hits] == [((0,), 0.9)]


def test_fuse_window_hits_replaces_scores_with_rrf():
    vector = [w("a", 0, 0, 5, 0.99), w("b", 0, 0, 5, 0.5)]
    text = [w("b", 0, 0, 5, 12.0), w("c", 0, 0, 5, 3.0)]
    fused = fuse_window_hits([vector, text], rrf_k=60, limit=10)
    assert [(h.video_id, round(h.score, 6)) for h in fused] == [
        ("b", round(1 / 62 + 1 / 61, 6)), ("a", round(1 / 61, 6)), ("c", round(1 / 62, 6))]


def test_thin_query_vectors_keeps_evenly_spaced_rows():
    import numpy as np

    from favor_ops.retrieval.search import thin_query_vectors

    vectors = np.arange(10, dtype=np.float32)[:, None]  # (10, 1)
    assert thin_query_vectors(vectors, 4)[:, 0].tolist() == [0, 3, 6, 9]
    assert thin_query_vectors(vectors, 10) is vectors
