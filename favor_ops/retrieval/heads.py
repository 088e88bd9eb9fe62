"""Retrieval heads: learned projections from FAVOR's query tokens and from MiniLM sentences into one space of width E.

    window tokens (W, Nq, H) -> window_proj (per token) -> (W, Nq, E) unit-norm      the `tokens` multivector
    text (B, 384)            -> text_proj                 -> (B, E) unit-norm
    audio-only tokens (W, Nq, H) -> mean over Nq -> audio_proj  -> (W, E) unit-norm   the `audio_vec` column
    video-only tokens (W, Nq, H) -> mean over Nq -> visual_proj -> (W, E) unit-norm   the `visual_vec` column

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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RetrievalHeadsConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown RetrievalHeadsConfig fields: {sorted(unknown)}")
        return cls(**d)

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
        self.audio_proj = nn.Linear(H, E)
        self.visual_proj = nn.Linear(H, E)
        if cfg.text_hidden_dim > 0:
            self.text_proj = nn.Sequential(nn.Linear(T, cfg.text_hidden_dim), nn.GELU(),
                                           nn.Linear(cfg.text_hidden_dim, E))
        else:
            self.text_proj = nn.Linear(T, E)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))  # log(1/T)
        self.av_logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))

    # ---- projections (all outputs unit-norm float32) ----
    def window_tokens(self, query_tokens: torch.Tensor) -> torch.Tensor:
        """(W, Nq, H) -> (W, Nq, E) unit-norm."""
        return F.normalize(self.window_proj(query_tokens), dim=-1)

    def text(self, sentence: torch.Tensor) -> torch.Tensor:
        """(B, 384) -> (B, E) unit-norm."""
        return F.normalize(self.text_proj(sentence), dim=-1)

    def audio(self, audio_only_tokens: torch.Tensor) -> torch.Tensor:
        """(W, Nq, H) audio-only query tokens -> (W, E) unit-norm."""
        return F.normalize(self.audio_proj(audio_only_tokens.mean(dim=1)), dim=-1)

    def visual(self, visual_only_tokens: torch.Tensor) -> torch.Tensor:
        """(W, Nq, H) video-only query tokens -> (W, E) unit-norm."""
        return F.normalize(self.visual_proj(visual_only_tokens.mean(dim=1)), dim=-1)

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
