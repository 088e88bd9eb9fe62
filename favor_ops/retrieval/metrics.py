"""Retrieval metrics on ranked lists of windows.

    recall_at_k(relevance, k): 1.0 when any of the top-k items is relevant (per query; "R@k" averages it)
    temporal_iou(a, b):        |a ∩ b| / |a ∪ b| of two [t_start, t_end) spans (0 when disjoint)
    top_hit_iou(hit, segments): the best IoU of the top hit's span with a relevant ground-truth segment of the same
                                clip (0 when the hit is not relevant)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def recall_at_k(relevance: Sequence[bool], k: int) -> float:
    """relevance: per ranked item (best first), True if relevant -> 1.0 if any of the first k is relevant."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return float(any(bool(r) for r in list(relevance)[:k]))


def mean_recall_at_k(rankings: Sequence[Sequence[bool]], k: int) -> float:
    """Mean R@k over queries (nan when there is none)."""
    if not rankings:
        return float("nan")
    return float(np.mean([recall_at_k(r, k) for r in rankings]))


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """IoU of two [start, end) spans in seconds."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 and inter > 0 else 0.0


def top_hit_iou(hit_span: tuple[float, float], segment_spans: Sequence[tuple[float, float]]) -> float:
    """Best IoU of the hit with any of the relevant segments (same clip); 0.0 if there is none."""
    return max((temporal_iou(hit_span, s) for s in segment_spans), default=0.0)


def rank_desc(scores: np.ndarray) -> np.ndarray:
    """Indices of scores, best first; ties broken by index (stable)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
