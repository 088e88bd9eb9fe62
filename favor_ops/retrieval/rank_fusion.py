"""Reciprocal-rank fusion (Cormack et al., 2009) of ranked lists.

    fused(d) = sum over lists L containing d of  weight_L / (k + rank_L(d))      (rank starts at 1)

Scores of the input lists are ignored (they live on different scales: cosine, BM25); only ranks
count. Ties in the fused score keep the order of first appearance (earlier list, better rank).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

DEFAULT_RRF_K = 60  # the constant of the original paper


@dataclass(frozen=True)
class FusedItem:
    key: Hashable
    score: float  # the fused RRF score
    ranks: tuple[int | None, ...]  # 1-based rank in each input list, None where absent


def reciprocal_rank_fusion(
    ranked_lists: Sequence[Sequence[Hashable]],
    *,
    k: int = DEFAULT_RRF_K,
    weights: Sequence[float] | None = None,
    limit: int | None = None,
) -> list[FusedItem]:
    """Fuse ranked lists of keys (best first); a key repeated inside one list counts at its best rank."""
    if k < 0:
        raise ValueError(f"rrf k must be >= 0, got {k}")
    if weights is None:
        weights = [1.0] * len(ranked_lists)
    if len(weights) != len(ranked_lists):
        raise ValueError(f"{len(weights)} weights for {len(ranked_lists)} lists")
    scores: dict[Hashable, float] = {}
    ranks: dict[Hashable, list[int | None]] = {}
    for list_index, (keys, weight) in enumerate(zip(ranked_lists, weights)):
        for rank, key in enumerate(keys, start=1):
            slots = ranks.setdefault(key, [None] * len(ranked_lists))
            if slots[list_index] is not None:
                continue  # a duplicate further down the same list adds nothing
            slots[list_index] = rank
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    order = sorted(scores, key=lambda key: -scores[key])  # stable: first appearance wins ties
    fused = [FusedItem(key, scores[key], tuple(ranks[key])) for key in order]
    return fused if limit is None else fused[:limit]
