"""Retrieval heads: learned projections from FAVOR's query tokens and from MiniLM sentences into one space of width E.

    window tokens (W, Nq, H) -> window_proj (per token) -> (W, Nq, E) unit-norm      the `tokens` multivector
    text (B, 384)            -> text_proj                 -> (B, E) unit-norm
    the `audio_vec` / `visual_vec` columns, from what the config's `av_frames` says:
      av_frames = 0: audio-only / video-only pass query tokens (W, Nq, H) -> mean over Nq -> Linear H -> E
      av_frames = L: the window's synced slots, frame by frame: the mean audio half and the mean visual half of
                     each frame's slots (W, L, D) (favor_ops.retrieval.frame_features) -> k features per frame from
                     it and its neighbours (a small temporal convolution, `av_frame_kernel` frames wide), concatenated
                     in time order (L * k <= E, zero-padded to E). cos(audio_vec, visual_vec) then
                     sums frame-by-frame agreement of what is heard and what is seen at the same moment: FAVOR's
                     frame-level synchrony, which a mean over the window's query tokens discards.
    the `frame_audio` / `frame_visual` columns (cfg.frame_vectors): each frame's audio and visual means (W, L, D)
                     -> a small temporal convolution (`frame_vector_kernel` frames wide) -> (W, L, E): what is heard
                     and what is seen in each 0.5 s frame, in the text head's space (trained after the window stage
                     against the captions of each frame: favor_ops.training.frame_vector_stage). A window's tokens
                     say what its 5 s hold; these say when inside it (QA grounding, favor_ops.qa.question_grounding).
    all unit-norm.

Score(text, window) = max over the window's Nq tokens of cos(text, token): BLIP-2 ITC style, which LanceDB's
multivector MaxSim computes natively. `identity_heads(H)` gives heads that pass H-wide vectors through unchanged
(and map a sentence to its first H dims), for plain FAVOR checkpoints that were never aligned.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class RetrievalHeadsConfig:
    window_dim: int = 128  # H: causal Q-Former hidden size
    text_dim: int = 384  # MiniLM-L6 sentence width
    embed_dim: int = 128  # E: stored vector width
    text_hidden_dim: int = 512  # hidden width of the text MLP; 0 = a single Linear 384 -> E
    init_temperature: float = 0.07  # contrastive softmax temperature at init (learned, as log(1/T))
    max_logit_scale: float = 100.0  # clamp on 1/T
    identity: bool = False  # heads built by identity_heads(): pass-through, never trained
    # audio/visual vectors from the window's L frames (L = frames per window) instead of the single-modality passes'
    # query tokens; 0 = query tokens (see module doc). Measured in docs/evaluation.md (audio-video matching).
    av_frames: int = 0
    modality_dim: int = 0  # D: width of a frame's audio / visual half (needed when av_frames > 0)
    av_frame_hidden_dim: int = 64  # hidden width of the per-frame networks D -> k (av_frames > 0)
    # frames each frame's features see (odd; 1 = the frame alone). An event can fall in one frame's audio and the
    # next frame's picture (2 FPS sampling); with 3 held-out AV match accuracy went 0.90 -> 0.94 (docs/evaluation.md)
    av_frame_kernel: int = 3
    # the features of a window's padded frames (past the end of its file) are zeroed before the concatenation, so
    # cos(audio_vec, visual_vec) of a short last window sums agreement over its real frames only; unmasked, the
    # padding's constant features made every 1-2 s window agree (docs/evaluation.md, "AV agreement over real
    # frames"). Heads saved before this field load with it off.
    av_mask_padding: bool = True
    # per-frame vectors in the text space (see module doc); needs modality_dim. Off in checkpoints that predate them.
    frame_vectors: bool = False
    frame_vector_hidden_dim: int = 256
    frame_vector_kernel: int = 3  # odd: frames each frame's vector sees (a word can straddle two 0.5 s frames)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RetrievalHeadsConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown RetrievalHeadsConfig fields: {sorted(unknown)}")
        return cls(**{"av_mask_padding": False, **d})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> "RetrievalHeadsConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


class RetrievalHeads(nn.Module):
    def __init__(self, cfg: RetrievalHeadsConfig):
        super().__init__()
        self.cfg = cfg
        H, E, T = cfg.window_dim, cfg.embed_dim, cfg.text_dim
        self.window_proj = nn.Linear(H, E)  # per query token
        if cfg.av_frames:
            if not (0 < cfg.av_frames <= E and cfg.modality_dim > 0 and cfg.av_frame_kernel % 2 == 1):
                raise ValueError(f"av_frames {cfg.av_frames} needs 0 < av_frames <= embed_dim ({E}), modality_dim "
                                 f"and an odd av_frame_kernel")
            self.audio_proj = self._frame_net(cfg)
            self.visual_proj = self._frame_net(cfg)
        else:
            self.audio_proj = nn.Linear(H, E)
            self.visual_proj = nn.Linear(H, E)
        if cfg.text_hidden_dim > 0:
            self.text_proj = nn.Sequential(nn.Linear(T, cfg.text_hidden_dim), nn.GELU(),
                                           nn.Linear(cfg.text_hidden_dim, E))
        else:
            self.text_proj = nn.Linear(T, E)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))  # log(1/T)
        self.av_logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))
        if cfg.frame_vectors:  # built last: the heads above draw the same initial weights with or without them
            if not (cfg.modality_dim > 0 and cfg.frame_vector_kernel % 2 == 1):
                raise ValueError("frame_vectors needs modality_dim and an odd frame_vector_kernel")
            self.frame_audio_proj = self._frame_vector_net(cfg)
            self.frame_visual_proj = self._frame_vector_net(cfg)

    @staticmethod
    def _temporal_net(in_dim: int, hidden_dim: int, out_dim: int, kernel: int) -> nn.Sequential:
        """(W, in_dim, L) -> (W, out_dim, L): each frame's features from the frames within kernel // 2 of it."""
        return nn.Sequential(nn.Conv1d(in_dim, hidden_dim, kernel, padding=kernel // 2), nn.GELU(),
                             nn.Conv1d(hidden_dim, out_dim, 1))

    @staticmethod
    def _frame_net(cfg: RetrievalHeadsConfig) -> nn.Sequential:
        """(W, D, L) -> (W, k, L): the AV heads' k features per frame (k = embed_dim // av_frames)."""
        return RetrievalHeads._temporal_net(cfg.modality_dim, cfg.av_frame_hidden_dim, cfg.embed_dim // cfg.av_frames,
                                            cfg.av_frame_kernel)

    @staticmethod
    def _frame_vector_net(cfg: RetrievalHeadsConfig) -> nn.Sequential:
        """(W, D, L) -> (W, E, L): one E-vector per frame (the frame vector heads)."""
        return RetrievalHeads._temporal_net(cfg.modality_dim, cfg.frame_vector_hidden_dim, cfg.embed_dim,
                                            cfg.frame_vector_kernel)

    # ---- projections (all outputs unit-norm float32) ----
    def window_tokens(self, query_tokens: torch.Tensor) -> torch.Tensor:
        """(W, Nq, H) -> (W, Nq, E) unit-norm."""
        return F.normalize(self.window_proj(query_tokens), dim=-1)

    def text(self, sentence: torch.Tensor) -> torch.Tensor:
        """(B, 384) -> (B, E) unit-norm."""
        return F.normalize(self.text_proj(sentence), dim=-1)

    def audio(self, audio_in: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(W, Nq, H) audio-only pass query tokens, or (W, L, D) per-frame audio means when cfg.av_frames
        -> (W, E) unit-norm. frame_mask (W, L) bool: which frames are real (None: all)."""
        return self._modality_vector(self.audio_proj, audio_in, frame_mask)

    def visual(self, visual_in: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(W, Nq, H) video-only pass query tokens, or (W, L, D) per-frame visual means when cfg.av_frames
        -> (W, E) unit-norm. frame_mask (W, L) bool: which frames are real (None: all)."""
        return self._modality_vector(self.visual_proj, visual_in, frame_mask)

    def _modality_vector(self, proj: nn.Module, x: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
        if not self.cfg.av_frames:
            return F.normalize(proj(x.mean(dim=1)), dim=-1)  # (W, E)
        if x.shape[1] != self.cfg.av_frames:
            raise ValueError(f"expected {self.cfg.av_frames} frames per window, got {x.shape[1]}")
        per_frame = proj(x.transpose(1, 2)).transpose(1, 2)  # (W, L, D) -> (W, L, k)
        if self.cfg.av_mask_padding and frame_mask is not None:
            per_frame = per_frame * frame_mask.to(per_frame.device).unsqueeze(-1).to(per_frame.dtype)
        per_frame = per_frame.flatten(1)  # (W, L * k)
        pad = self.cfg.embed_dim - per_frame.shape[1]
        return F.normalize(F.pad(per_frame, (0, pad)), dim=-1)  # (W, E)

    def frame_audio(self, frame_audio_means: torch.Tensor) -> torch.Tensor:
        """(W, L, D) per-frame audio means -> (W, L, E) unit-norm (cfg.frame_vectors)."""
        return self._frame_vectors("frame_audio_proj", frame_audio_means)

    def frame_visual(self, frame_visual_means: torch.Tensor) -> torch.Tensor:
        """(W, L, D) per-frame visual means -> (W, L, E) unit-norm (cfg.frame_vectors)."""
        return self._frame_vectors("frame_visual_proj", frame_visual_means)

    def _frame_vectors(self, proj_name: str, x: torch.Tensor) -> torch.Tensor:
        if not self.cfg.frame_vectors:
            raise ValueError("these retrieval heads have no frame vectors (RetrievalHeadsConfig.frame_vectors)")
        proj = getattr(self, proj_name)
        return F.normalize(proj(x.transpose(1, 2)).transpose(1, 2), dim=-1)  # (W, L, D) -> (W, L, E)

    @staticmethod
    def pooled(tokens: torch.Tensor) -> torch.Tensor:
        """(W, Nq, E) unit-norm tokens -> (W, E) unit-norm mean."""
        return F.normalize(tokens.mean(dim=1), dim=-1)

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=self.cfg.max_logit_scale)

    def av_scale(self) -> torch.Tensor:
        return self.av_logit_scale.exp().clamp(max=self.cfg.max_logit_scale)


def identity_heads(window_dim: int, text_dim: int = 384) -> RetrievalHeads:
    """Heads with E = H that leave window vectors unchanged; text maps to its first H dims (zero-padded)."""
    cfg = RetrievalHeadsConfig(window_dim=window_dim, text_dim=text_dim, embed_dim=window_dim, text_hidden_dim=0,
                               identity=True)
    heads = RetrievalHeads(cfg)
    with torch.no_grad():
        for lin in (heads.window_proj, heads.audio_proj, heads.visual_proj):
            lin.weight.copy_(torch.eye(window_dim))
            lin.bias.zero_()
        heads.text_proj.weight.copy_(torch.eye(window_dim, text_dim))  # (E, 384): first min(E, 384) dims
        heads.text_proj.bias.zero_()
    for p in heads.parameters():
        p.requires_grad_(False)
    return heads.eval()
