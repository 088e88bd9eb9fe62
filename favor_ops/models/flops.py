"""Analytic FLOP counts from the config (1 multiply-add = 2 FLOPs; matmuls, convs and attention only —
LayerNorm, softmax, GELU and biases are a rounding error).

For a transformer layer over N tokens of width d with an MLP of width f:
    projections  2 N (4 d^2)        q, k, v, out
    attention    2 N^2 d  x 2       scores and weighted sum
    MLP          2 N (2 d f)

Published FAVOR at 2 FPS: the EVA-ViT-g vision tower is ~0.52 TFLOP per frame (~1.04 TFLOP per video-second),
Whisper-large-v2 ~2.3 TFLOP per 30 s chunk (~0.076 TFLOP per video-second).
"""

from __future__ import annotations

from favor_ops.models.config import FavorConfig, SpeechConfig, VisualConfig


def linear_flops(tokens: int, d_in: int, d_out: int) -> float:
    return 2.0 * tokens * d_in * d_out


def attention_core_flops(q_tokens: int, k_tokens: int, width: int) -> float:
    """Scores (q k^T) and weighted sum (p v)."""
    return 2.0 * 2.0 * q_tokens * k_tokens * width


def encoder_layer_flops(tokens: int, width: int, ffn: int) -> float:
    """A self-attention + MLP transformer layer."""
    return (linear_flops(tokens, width, 3 * width) + attention_core_flops(tokens, tokens, width)
            + linear_flops(tokens, width, width) + linear_flops(tokens, width, ffn) + linear_flops(tokens, ffn, width))


def cross_attention_flops(q_tokens: int, q_width: int, kv_tokens: int, kv_width: int) -> float:
    return (linear_flops(q_tokens, q_width, q_width) + linear_flops(kv_tokens, kv_width, 2 * q_width)
            + attention_core_flops(q_tokens, kv_tokens, q_width) + linear_flops(q_tokens, q_width, q_width))


# ---------------------------------------------------------------------- per unit
def vision_tower_flops_per_frame(v: VisualConfig) -> float:
    patch_embed = linear_flops(v.num_patches, v.num_channels * v.patch_size ** 2, v.hidden_size)
    return patch_embed + v.num_hidden_layers * encoder_layer_flops(v.num_image_tokens, v.hidden_size,
                                                                   v.intermediate_size)


def visual_qformer_flops_per_frame(v: VisualConfig) -> float:
    """Queries + instruction tokens through self-attention and MLP; queries alone through cross-attention."""
    n_text = len(v.instruction_token_ids)
    n = v.num_query_tokens + n_text
    total = 0.0
    for layer in range(v.qformer_num_hidden_layers):
        total += encoder_layer_flops(n, v.qformer_hidden_size, v.qformer_intermediate_size)
        if layer % v.qformer_cross_attention_frequency == 0:
            total += cross_attention_flops(v.num_query_tokens, v.qformer_hidden_size, v.num_image_tokens, v.hidden_size)
    return total


def whisper_flops_per_chunk(s: SpeechConfig) -> float:
    conv1 = linear_flops(s.mel_frames_per_chunk, s.num_mel_bins * 3, s.d_model)  # kernel 3, stride 1
    conv2 = linear_flops(s.frames_per_chunk, s.d_model * 3, s.d_model)  # kernel 3, stride 2
    layers = s.encoder_layers * encoder_layer_flops(s.frames_per_chunk, s.d_model, s.encoder_ffn_dim)
    return conv1 + conv2 + layers


def causal_qformer_flops_per_window(cfg: FavorConfig) -> float:
    cq, T, E, H = cfg.causal_qformer, cfg.window_tokens, cfg.slot_width, cfg.causal_qformer.hidden_size
    frame_attn = (linear_flops(T, E, 3 * E) + attention_core_flops(T, T, E) + linear_flops(T, E, E))
    self_attn = linear_flops(cq.num_query_tokens, H, 4 * H) + attention_core_flops(cq.num_query_tokens,
                                                                                    cq.num_query_tokens, H)
    cross = cross_attention_flops(cq.num_query_tokens, H, T, E)
    mlp = linear_flops(cq.num_query_tokens, H, cq.intermediate_size) * 2
    return cq.num_hidden_layers * (frame_attn + self_attn + cross + mlp)


# ---------------------------------------------------------------------- per video-second
def flops_per_video_second(cfg: FavorConfig) -> dict[str, float]:
    """FLOPs per second of media for each stage, and their total (keys: vision_tower, visual_qformer, visual,
    whisper, speech_proj, speech, qformer, projection, total)."""
    fps = cfg.windows.fps
    windows_per_s = fps / cfg.windows.stride_frames
    out = {
        "vision_tower": fps * vision_tower_flops_per_frame(cfg.visual),
        "visual_qformer": fps * visual_qformer_flops_per_frame(cfg.visual),
        "whisper": whisper_flops_per_chunk(cfg.speech) / cfg.speech.chunk_s,
        "speech_proj": linear_flops(1, cfg.speech.d_model, cfg.modality_width) * cfg.speech.frame_rate_hz,
        "qformer": windows_per_s * causal_qformer_flops_per_window(cfg),
        "projection": windows_per_s * linear_flops(cfg.causal_qformer.num_query_tokens, cfg.causal_qformer.hidden_size,
                                                   cfg.llm_hidden_size),
    }
    out["visual"] = out["vision_tower"] + out["visual_qformer"]
    out["speech"] = out["whisper"] + out["speech_proj"]
    out["total"] = out["visual"] + out["speech"] + out["qformer"] + out["projection"]
    return out
