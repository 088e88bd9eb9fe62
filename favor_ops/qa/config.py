"""QA model configuration: which causal LM, its LoRA adapters, the prompt budget and decoding.

Presets mirror the FAVOR model presets:
- `tiny`: a 1-layer Llama built from scratch (unit tests, seconds).
- `demo`: a 2-layer, 128-wide Llama built from scratch, trained by `favor train --stage qa` on this CPU in minutes; tokenizer:
  the WordPiece vocabulary shipped with all-MiniLM-L6-v2 (installs offline); reads the window channels and,
  once QA training has written the words its corpus speaks, the heard words.
- `favor-13b`: Vicuna-13B (hub id or local path, `FAVOR_LLM_SOURCE`) with the published LoRA (r 32, alpha 32,
  q/k/v/o), adapters loaded from the official FAVOR checkpoint (`FAVOR_OFFICIAL_CHECKPOINT`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

LLM_SOURCE_ENV = "FAVOR_LLM_SOURCE"
VICUNA_HUB_ID = "lmsys/vicuna-13b-v1.5"
MINILM_TOKENIZER = "minilm-wordpiece"  # tokenizer name meaning "the all-MiniLM-L6-v2 package's vocab.txt"


@dataclass(frozen=True)
class ScratchLMConfig:
    """A Llama-architecture causal LM initialised at random (trained here); sizes only."""

    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 384
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = True


@dataclass(frozen=True)
class LoraSettings:
    """peft LoRA on the LLM's attention projections (published FAVOR: r 32, alpha 32, q/k/v/o)."""

    enabled: bool = False
    r: int = 32
    alpha: int = 32
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class GenerationSettings:
    num_beams: int = 1  # 1 = greedy
    max_new_tokens: int = 12
    batch_size: int = 16  # questions per generate() call


@dataclass(frozen=True)
class QAConfig:
    name: str = "demo"
    # The LLM: `lm_source` (hub id or local dir, loaded with AutoModelForCausalLM) or, when None, a scratch Llama.
    lm_source: str | None = None
    scratch: ScratchLMConfig = field(default_factory=ScratchLMConfig)
    tokenizer: str = MINILM_TOKENIZER  # or a hub id / local dir for AutoTokenizer
    lora: LoraSettings = field(default_factory=LoraSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    window_dim: int = 128  # D of the stored `tokens` (the projection's input width)
    max_window_tokens: int = 32 * 24  # prompt budget for window tokens (24 windows of 32 tokens = 2 min of video)
    max_question_tokens: int = 48
    # Window channels: each window's question match and audio-visual agreement added to its projected tokens
    # (favor_ops.qa.window_channels), and each question word's grounding in the windows added to its tokens
    # (favor_ops.qa.question_grounding). Off for the published FAVOR projection (favor-13b); configs saved without
    # the field load with it off.
    window_channels: bool = False
    question_match_temperature: float = 0.02  # T of the softmax over a prompt's windows (cosine units)
    # Heard words (favor_ops.qa.heard_words): the words the model names, each scored against every window by the
    # aligned text head; the window's tokens get the embedding of the word it sounds like. Filled by QA training with
    # the words spoken in its corpus when the preset reads window channels; empty = off.
    heard_words: tuple[str, ...] = ()
    heard_word_temperature: float = 0.02  # T of the softmax over the words (cosine units)
    # Frame grounding (favor_ops.qa.question_grounding), used when the windows carry per-frame vectors (aligned
    # checkpoints with frame heads): T of the softmax over a prompt's frames and over the words heard in them
    frame_temperature: float = 0.05

    def __post_init__(self):
        if self.heard_words and not self.window_channels:
            raise ValueError("heard_words needs window_channels (both score windows with the aligned text head)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "QAConfig":
        d = dict(d)
        d.setdefault("window_channels", False)
        d["heard_words"] = tuple(d.get("heard_words", ()))
        d["scratch"] = ScratchLMConfig(**d.get("scratch", {}))
        lora = dict(d.get("lora", {}))
        if "target_modules" in lora:
            lora["target_modules"] = tuple(lora["target_modules"])
        d["lora"] = LoraSettings(**lora)
        d["generation"] = GenerationSettings(**d.get("generation", {}))
        return cls(**d)


def tiny_qa_config(window_dim: int = 32) -> QAConfig:
    return QAConfig(name="tiny", scratch=ScratchLMConfig(hidden_size=48, num_hidden_layers=1, num_attention_heads=2,
                                                         intermediate_size=96, max_position_embeddings=1024),
                    window_dim=window_dim, window_channels=True,
                    generation=GenerationSettings(max_new_tokens=6, batch_size=4))


def demo_qa_config(window_dim: int = 128) -> QAConfig:
    return QAConfig(name="demo", window_dim=window_dim, window_channels=True)


def favor_13b_qa_config(window_dim: int = 768) -> QAConfig:
    return QAConfig(name="favor-13b", lm_source=os.environ.get(LLM_SOURCE_ENV, VICUNA_HUB_ID),
                    tokenizer=os.environ.get(LLM_SOURCE_ENV, VICUNA_HUB_ID),
                    lora=LoraSettings(enabled=True, r=32, alpha=32, dropout=0.1),
                    window_dim=window_dim, max_window_tokens=32 * 60,
                    generation=GenerationSettings(num_beams=1, max_new_tokens=64, batch_size=8))


QA_PRESETS = {"tiny": tiny_qa_config, "demo": demo_qa_config, "favor-13b": favor_13b_qa_config}
