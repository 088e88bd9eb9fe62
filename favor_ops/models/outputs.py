"""Typed outputs of the FAVOR model stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class WindowBatch:
    """Synced slots of a batch of windows: the causal Q-Former's input.

    A slot is a visual slot (D) and an audio slot (D) joined on the feature axis (2D). The two modality masks say
    which halves are real; a slot with neither half real (padding slot, padded frame) is masked everywhere.
    """

    slots: torch.Tensor  # (W, L*S, 2D) float
    visual_mask: torch.Tensor  # (W, L*S) bool: visual half is a real query token of a real frame
    audio_mask: torch.Tensor  # (W, L*S) bool: audio half is a real speech frame
    frame_mask: torch.Tensor  # (W, L) bool: position holds a real frame
    t_start_s: np.ndarray  # (W,) float64 absolute window start
    t_end_s: np.ndarray  # (W,) float64 absolute window end (exclusive)
    window_index: np.ndarray  # (W,) int64 index of the window in its media

    def __len__(self) -> int:
        return int(self.slots.shape[0])


@dataclass
class CausalQFormerOutput:
    query_tokens: torch.Tensor  # (B, Nq, H) the window's query outputs
    slot_states: tuple[torch.Tensor, ...] = ()  # per layer (B, L*S, 2D): the causal frame attention's outputs


@dataclass
class FavorWindowOutput:
    """Per-window query tokens of one media file (or a run of its windows, when streamed), in time order."""

    query_tokens: torch.Tensor  # (W, Nq, H) float32
    t_start_s: np.ndarray  # (W,) float64 absolute [t_start, t_end) of each window
    t_end_s: np.ndarray  # (W,) float64
    window_mask: torch.Tensor  # (W,) bool: window holds at least one real frame
    frame_mask: torch.Tensor  # (W, L) bool: which frame positions are real
    window_index: np.ndarray  # (W,) int64
    has_video: bool = True
    has_audio: bool = True

    def __len__(self) -> int:
        return int(self.query_tokens.shape[0])

    @staticmethod
    def concat(parts: list["FavorWindowOutput"]) -> "FavorWindowOutput":
        """Join runs of windows (e.g. the chunks a stream yields) into one output, in order."""
        if not parts:
            raise ValueError("nothing to concatenate")
        return FavorWindowOutput(
            query_tokens=torch.cat([p.query_tokens for p in parts]),
            t_start_s=np.concatenate([p.t_start_s for p in parts]),
            t_end_s=np.concatenate([p.t_end_s for p in parts]),
            window_mask=torch.cat([p.window_mask for p in parts]),
            frame_mask=torch.cat([p.frame_mask for p in parts]),
            window_index=np.concatenate([p.window_index for p in parts]),
            has_video=parts[0].has_video,
            has_audio=parts[0].has_audio,
        )


@dataclass
class FavorForwardOutput:
    """Training forward over a batch of windows."""

    query_tokens: torch.Tensor  # (B, Nq, H)
    llm_tokens: torch.Tensor  # (B, Nq, llm_hidden)
    diversity_loss: torch.Tensor  # () lambda-weighted mean pairwise cosine similarity
