"""Fast alignment path: cache what the frozen part of the causal Q-Former computes, train only its query side.

In the causal Q-Former every layer's frame attention reads the window's *input* slots (not the previous layer's
output), so with the slot LayerNorm, slot positions, frame attentions and the speech Linear frozen, each layer's
slot states are a fixed function of the window. They are computed once per window and per modality pass (full,
audio only, video only) and cached in float16. A training step then runs only the query side:

    q = LN(query_tokens); for each layer l: q = SelfAttn(q); q = CrossAttn(q, slot_states_l, key_mask); q = MLP(q)

which is what CausalQFormer.forward does after its frame attentions (checked by a unit test against
FavorModel.forward), at a fraction of the cost: no 320 x 320 frame attention forward or backward per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from favor_ops.retrieval.aligned_model import mask_modality
from favor_ops.retrieval.frame_features import frame_modality_means

PASSES = ("full", "audio_only", "visual_only")


@dataclass
class CachedPass:
    states: list[torch.Tensor]  # per layer (N, L*S, 2D) float16
    key_valid: torch.Tensor  # (N, L*S) bool


def frozen_slot_parameters(favor) -> list[torch.nn.Parameter]:
    """Parameters the cached slot states depend on (frozen in the fast path)."""
    cq = favor.causal_qformer
    params = list(cq.ln_slots.parameters()) + list(cq.slot_position.parameters())
    for layer in cq.layers:
        params += list(layer.frame_attn.parameters())
    params += list(favor.speech.proj.parameters())
    return params


def key_valid_of(visual_mask: torch.Tensor, audio_mask: torch.Tensor) -> torch.Tensor:
    """(B, L*S) keys the cross-attention may read: real slots (all slots of a window with none, as the model)."""
    valid = visual_mask | audio_mask
    return valid | ~valid.any(dim=1, keepdim=True)


@torch.no_grad()
def compute_slot_states(favor, batch) -> CachedPass:
    cq = favor.causal_qformer
    was = cq.training
    cq.eval()
    out = cq(batch.slots, batch.visual_mask, batch.audio_mask, favor.config.slots_per_frame, return_slot_states=True)
    cq.train(was)
    return CachedPass([s.half() for s in out.slot_states], key_valid_of(batch.visual_mask, batch.audio_mask))


def query_tokens_from_states(causal_qformer, states: list[torch.Tensor], key_valid: torch.Tensor) -> torch.Tensor:
    """(B, Nq, H) query tokens from per-layer slot states (B, L*S, 2D) and key_valid (B, L*S): the query side of
    CausalQFormer.forward."""
    B = key_valid.shape[0]
    key_mask = key_valid[:, None, None, :]  # (B, 1, 1, L*S)
    q = causal_qformer.drop(causal_qformer.ln_queries(causal_qformer.query_tokens.expand(B, -1, -1)))  # (B, Nq, H)
    for layer, s in zip(causal_qformer.layers, states):
        q = layer.self_attn(q, q, None)
        q = layer.cross_attn(q, s.float(), key_mask)
        q = layer.mlp(q)
    return q


class SlotStateCache:
    """Per-window cached slot states of the three modality passes for a WindowDataset."""

    def __init__(self, favor, dataset, indices: np.ndarray, batch_windows: int = 16, progress: bool = True):
        from favor_ops.training.window_dataset import build_training_batch

        self.position = {int(i): n for n, i in enumerate(indices)}
        D = favor.config.modality_width
        chunks: dict[str, list[CachedPass]] = {p: [] for p in PASSES}
        has_a, has_v, frame_a, frame_v = [], [], [], []
        starts = range(0, len(indices), batch_windows)
        if progress:
            import sys

            from tqdm import tqdm

            starts = tqdm(starts, desc="cache slot states", unit="batch", file=sys.stderr)
        with torch.no_grad():
            for start in starts:
                idx = indices[start:start + batch_windows]
                batch, a, v = build_training_batch(favor, dataset, idx)
                has_a.append(a.cpu())
                has_v.append(v.cpu())
                audio_means, visual_means = frame_modality_means(batch, D)  # (B, L, D) each
                frame_a.append(audio_means.half().cpu())
                frame_v.append(visual_means.half().cpu())
                chunks["full"].append(compute_slot_states(favor, batch))
                chunks["audio_only"].append(compute_slot_states(
                    favor, mask_modality(batch, D, keep_visual=False, keep_audio=True)))
                chunks["visual_only"].append(compute_slot_states(
                    favor, mask_modality(batch, D, keep_visual=True, keep_audio=False)))
        self.passes = {p: CachedPass([torch.cat([c.states[l] for c in chunks[p]])
                                      for l in range(len(chunks[p][0].states))],
                                     torch.cat([c.key_valid for c in chunks[p]])) for p in PASSES}
        self.has_audio = torch.cat(has_a)
        self.has_video = torch.cat(has_v)
        self.frame_means = (torch.cat(frame_a), torch.cat(frame_v))  # per-frame audio / visual means (N, L, D)

    def gather(self, indices) -> tuple[dict[str, CachedPass], tuple[torch.Tensor, torch.Tensor], torch.Tensor,
                                       torch.Tensor]:
        """(passes, (audio (B, L, D), visual (B, L, D)) frame means, has_audio (B,), has_video (B,))."""
        rows = torch.as_tensor([self.position[int(i)] for i in indices])
        out = {p: CachedPass([s[rows] for s in c.states], c.key_valid[rows]) for p, c in self.passes.items()}
        frames = (self.frame_means[0][rows], self.frame_means[1][rows])
        return out, frames, self.has_audio[rows], self.has_video[rows]
