"""Contrastive losses of the alignment stage.

MaxSim (BLIP-2 ITC style): score(window i, text j) = max over the window's Nq unit-norm tokens of cos(token, text j).

Multi-positive masked softmax over a label matrix (B windows x T texts), labels 1 positive / 0 negative /
-1 ignored (excluded from both numerator and denominator):

    window -> text, for each window i with a positive:  -log( sum_{j in P_i} e^{s_ij} / sum_{j not ignored} e^{s_ij} )
    text -> window, for each text j with a positive:    -log( sum_{i in P_j} e^{s_ij} / sum_{i not ignored} e^{s_ij} )
    loss = (mean over windows + mean over texts) / 2

Audio <-> visual matching: InfoNCE between audio-only and video-only vectors of the same windows, the other
windows of the batch as negatives, both directions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1


def maxsim_scores(tokens: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """tokens (B, Nq, E) unit-norm, texts (T, E) unit-norm -> (B, T) max over Nq of the cosine."""
    return torch.einsum("bqe,te->bqt", tokens, texts).amax(dim=1)


def _directional(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over rows with a positive of -log(sum_pos e^s / sum_valid e^s); 0 when no row has one."""
    valid = labels != IGNORED
    pos = labels == POSITIVE
    has_pos = pos.any(dim=1)
    if not bool(has_pos.any()):
        return logits.new_zeros(())
    neg_inf = torch.finfo(logits.dtype).min
    log_num = torch.logsumexp(logits.masked_fill(~pos, neg_inf), dim=1)  # (R,)
    log_den = torch.logsumexp(logits.masked_fill(~valid, neg_inf), dim=1)  # (R,)
    return (log_den - log_num)[has_pos].mean()


def multi_positive_nce(logits: torch.Tensor, labels: torch.Tensor, text_labels: torch.Tensor | None = None
                       ) -> torch.Tensor:
    """logits (B, T) scaled scores, labels (B, T) int in {1, 0, -1} -> () symmetric multi-positive loss.

    text_labels: optional (B, T) labels for the text -> window direction only (default: `labels`); lets a window
    that shows a text only briefly be a positive for the window but a competitor when ranking windows for the text.
    """
    cols = labels if text_labels is None else text_labels
    return 0.5 * (_directional(logits, labels) + _directional(logits.t(), cols.t()))


def av_matching_loss(audio_vec: torch.Tensor, visual_vec: torch.Tensor, scale: torch.Tensor,
                     valid: torch.Tensor | None = None) -> torch.Tensor:
    """audio_vec, visual_vec (B, E) unit-norm of the same windows -> () symmetric InfoNCE; valid (B,) bool keeps
    windows holding both modalities (needs >= 2)."""
    if valid is not None:
        audio_vec, visual_vec = audio_vec[valid], visual_vec[valid]
    if audio_vec.shape[0] < 2:
        return audio_vec.new_zeros(())
    logits = scale * audio_vec @ visual_vec.t()  # (b, b)
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
