import pytest

from favor_ops.models.config import SpeechConfig
from favor_ops.models.flops import (
    encoder_layer_flops,
    flops_per_video_second,
    vision_tower_flops_per_frame,
    whisper_flops_per_chunk,
)
from favor_ops.models.presets import favor_13b_config, tiny_config


def test_encoder_layer_count_by_hand():
    # N=2 tokens, d=3, f=5: qkv 2*2*3*9=108, attention 4*2*2*3=48, out 2*2*3*3=36, mlp 2*2*3*5*2=120 -> 312
    assert encoder_layer_flops(2, 3, 5) == 312


def test_favor_13b_flops_in_the_expected_range():
    f = flops_per_video_second(favor_13b_config())
    assert 0.95e12 <= f["vision_tower"] <= 1.1e12  # EVA-ViT-g/14 @224, 2 FPS: ~1.0 TFLOP per video-second
    assert 0.07e12 <= f["whisper"] <= 0.09e12  # Whisper-large-v2: ~0.08 TFLOP per video-second
    assert 1e9 <= f["qformer"] <= 10e9  # the causal Q-Former is cheap next to the encoders
    assert f["total"] == pytest.approx(f["visual"] + f["speech"] + f["qformer"] + f["projection"])
    # Per unit: ~0.52 TFLOP per frame, ~2.27 TFLOP per 30 s chunk.
    assert 0.5e12 <= vision_tower_flops_per_frame(favor_13b_config().visual) <= 0.55e12
    assert 2.2e12 <= whisper_flops_per_chunk(SpeechConfig()) <= 2.35e12


def test_flops_scale_with_fps():
    cfg = tiny_config()
    f2 = flops_per_video_second(cfg)
    f4 = flops_per_video_second(cfg.replace(windows=cfg.windows.__class__(fps=4.0)))
    assert f4["vision_tower"] == pytest.approx(2 * f2["vision_tower"])
    assert f4["whisper"] == pytest.approx(f2["whisper"])  # audio cost does not depend on the frame rate
