"""FAVOR's diversity loss: mean pairwise cosine similarity among a window's query outputs.

    loss = mean over real windows b of  1 / (Nq (Nq - 1)) * sum_{i != j} cos(q_bi, q_bj)

Padded windows (no real frame) are excluded. The cosine follows the release: a.b / (|a| |b| + 1e-9).
Weighted by lambda (`FavorConfig.diversity_weight`, 0.01 in the paper) when added to the LM loss.
"""

from __future__ import annotations

import torch

COSINE_EPS = 1e-9


def pairwise_cosine(queries: torch.Tensor) -> torch.Tensor:
    """(B, Nq, H) -> (B, Nq, Nq) cosine similarity of every pair of query outputs."""
    dots = queries @ queries.transpose(1, 2)  # (B, Nq, Nq)
    norms = queries.norm(dim=-1)  # (B, Nq)
    return dots / (norms[:, :, None] * norms[:, None, :] + COSINE_EPS)


def diversity_loss(queries: torch.Tensor, window_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Unweighted diversity loss of a batch of windows.

    Args:
        queries: (B, Nq, H) query outputs.
        window_mask: (B,) bool, True for real windows; None = all real.
    Returns:
        () mean over real windows of the mean off-diagonal cosine similarity; 0 when no window is real.
    """
    n_windows, n_queries, _ = queries.shape
    if n_queries < 2:
        return queries.new_zeros(())
    cos = pairwise_cosine(queries.float())  # (B, Nq, Nq)
    off_diagonal = ~torch.eye(n_queries, dtype=torch.bool, device=queries.device)  # (Nq, Nq)
    per_window = (cos * off_diagonal).sum(dim=(1, 2)) / (n_queries * (n_queries - 1))  # (B,)
    if window_mask is None:
        window_mask = torch.ones(n_windows, dtype=torch.bool, device=queries.device)
    weights = window_mask.to(per_window.dtype)  # (B,)
    return (per_window * weights).sum() / weights.sum().clamp_min(1.0)


def weighted_diversity_loss(queries: torch.Tensor, window_mask: torch.Tensor | None, weight: float) -> torch.Tensor:
    """lambda * diversity_loss: the term added to the training loss."""
    return weight * diversity_loss(queries, window_mask)
