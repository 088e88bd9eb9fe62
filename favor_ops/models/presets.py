"""Named model configurations: `tiny` (unit tests), `demo` (trains on a 2-core CPU), `favor-13b` (published sizes)."""

from __future__ import annotations

import os
from collections.abc import Callable

from favor_ops.models.config import (
    CausalQFormerConfig,
    ConfigError,
    FavorConfig,
    SpeechConfig,
    VisualConfig,
    WindowConfig,
)

# Hub ids of the published encoders; override with a local directory through these environment variables.
INSTRUCTBLIP_SOURCE_ENV = "FAVOR_INSTRUCTBLIP_SOURCE"
WHISPER_SOURCE_ENV = "FAVOR_WHISPER_SOURCE"
OFFICIAL_CHECKPOINT_ENV = "FAVOR_OFFICIAL_CHECKPOINT"
INSTRUCTBLIP_HUB_ID = "Salesforce/instructblip-vicuna-13b"
WHISPER_HUB_ID = "openai/whisper-large-v2"

# Instruction given to the frozen InstructBLIP Q-Former for every frame in the index (the index is built once,
# before any question is known, so the instruction is a fixed description prompt).
DEFAULT_INSTRUCTION = "Describe the image in detail."


def tiny_config() -> FavorConfig:
    """Random init, a few thousand parameters per block: seconds on CPU. Unit tests only."""
    return FavorConfig(
        name="tiny",
        visual=VisualConfig(
            image_size=32, patch_size=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=64, qformer_hidden_size=32, qformer_num_hidden_layers=1,
            qformer_num_attention_heads=2, qformer_intermediate_size=64, qformer_cross_attention_frequency=1,
            qformer_vocab_size=64, qformer_max_position_embeddings=32, num_query_tokens=32,
            instruction_token_ids=(2, 7, 11, 5), frame_batch_size=16,
        ),
        speech=SpeechConfig(num_mel_bins=16, d_model=24, encoder_layers=1, encoder_attention_heads=2,
                            encoder_ffn_dim=48, chunk_batch_size=4),
        causal_qformer=CausalQFormerConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                           intermediate_size=64, num_query_tokens=32, max_position_embeddings=512),
        windows=WindowConfig(fps=2.0, frames_per_window=10, stride_frames=10, window_batch_size=8),
        llm_hidden_size=48,
    )


def demo_config() -> FavorConfig:
    """Small enough to train on the synthetic corpus on a 2-core CPU in minutes; the `favor demo` default."""
    return FavorConfig(
        name="demo",
        visual=VisualConfig(
            image_size=64, patch_size=16, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=256, qformer_hidden_size=128, qformer_num_hidden_layers=2,
            qformer_num_attention_heads=4, qformer_intermediate_size=256, qformer_cross_attention_frequency=1,
            qformer_vocab_size=128, qformer_max_position_embeddings=64, num_query_tokens=32,
            instruction_token_ids=(2, 17, 33, 5), frame_batch_size=64,
        ),
        speech=SpeechConfig(num_mel_bins=40, d_model=128, encoder_layers=2, encoder_attention_heads=4,
                            encoder_ffn_dim=256, chunk_batch_size=4),
        causal_qformer=CausalQFormerConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                                           intermediate_size=256, num_query_tokens=32, max_position_embeddings=512,
                                           hidden_dropout_prob=0.1, attention_dropout_prob=0.1),
        windows=WindowConfig(fps=2.0, frames_per_window=10, stride_frames=10, window_batch_size=32),
        llm_hidden_size=256,
    )


def favor_13b_config() -> FavorConfig:
    """The published FAVOR sizes: EVA-ViT-g/14 + InstructBLIP (Vicuna-13B) Q-Former, Whisper-large-v2,
    BERT-base-sized 2-layer causal Q-Former, Vicuna-13B width. Encoders load from their sources."""
    return FavorConfig(
        name="favor-13b",
        visual=VisualConfig(
            source=os.environ.get(INSTRUCTBLIP_SOURCE_ENV, INSTRUCTBLIP_HUB_ID),
            image_size=224, patch_size=14, hidden_size=1408, num_hidden_layers=39, num_attention_heads=16,
            intermediate_size=6144, qformer_hidden_size=768, qformer_num_hidden_layers=12,
            qformer_num_attention_heads=12, qformer_intermediate_size=3072, qformer_cross_attention_frequency=2,
            qformer_vocab_size=30523, num_query_tokens=32, instruction=DEFAULT_INSTRUCTION, frame_batch_size=64,
        ),
        speech=SpeechConfig(
            source=os.environ.get(WHISPER_SOURCE_ENV, WHISPER_HUB_ID),
            num_mel_bins=80, d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120,
            chunk_batch_size=8,
        ),
        causal_qformer=CausalQFormerConfig(hidden_size=768, num_hidden_layers=2, num_attention_heads=12,
                                           intermediate_size=3072, num_query_tokens=32,
                                           max_position_embeddings=4096),
        windows=WindowConfig(fps=2.0, frames_per_window=10, stride_frames=10, window_batch_size=32),
        llm_hidden_size=5120,
        diversity_weight=0.01,
        official_checkpoint=os.environ.get(OFFICIAL_CHECKPOINT_ENV) or None,
    )


PRESETS: dict[str, Callable[[], FavorConfig]] = {
    "tiny": tiny_config,
    "demo": demo_config,
    "favor-13b": favor_13b_config,
}


def preset_config(name: str) -> FavorConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known: {sorted(PRESETS)}") from None
