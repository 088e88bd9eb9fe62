"""Per-frame modality means of a window's synced slots: what the frame-level audio/visual heads read.

A window's slots (W, L*S, 2D) hold, for each of its L frames, S slots whose visual half [:D] is one of the frame's
visual query tokens and whose audio half [D:] is one of the speech frames of the frame's 0.5 s (FAVOR's sync). The
mean of each half over the frame's real slots says what is seen and what is heard at that moment:

    audio  (W, L, D)   mean of the real audio halves of frame l's slots (zeros where frame l has no audio)
    visual (W, L, D)   mean of the real visual halves of frame l's slots (zeros where frame l has no picture)
"""

from __future__ import annotations

import torch

from favor_ops.models.outputs import WindowBatch


def frame_modality_means(batch: WindowBatch, modality_width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(audio (W, L, D), visual (W, L, D)) float32 per-frame means of the real slot halves (D = modality_width)."""
    W, LS, _ = batch.slots.shape
    L = batch.frame_mask.shape[1]
    S, D = LS // L, modality_width
    slots = batch.slots.float().view(W, L, S, 2 * D)
    visual_w = batch.visual_mask.view(W, L, S, 1).float()  # (W, L, S, 1) 1 = real visual half
    audio_w = batch.audio_mask.view(W, L, S, 1).float()
    visual = (slots[..., :D] * visual_w).sum(dim=2) / visual_w.sum(dim=2).clamp(min=1.0)  # (W, L, D)
    audio = (slots[..., D:] * audio_w).sum(dim=2) / audio_w.sum(dim=2).clamp(min=1.0)  # (W, L, D)
    return audio, visual
