import json

import pytest

from favor_ops.models.config import CausalQFormerConfig, ConfigError, FavorConfig, WindowConfig
from favor_ops.models.presets import PRESETS, demo_config, favor_13b_config, preset_config, tiny_config


def test_favor_13b_derived_sizes_match_the_paper():
    cfg = favor_13b_config()
    assert cfg.modality_width == 768
    assert cfg.slot_width == 1536
    assert cfg.audio_slots_per_frame == 25
    assert cfg.slots_per_frame == 32
    assert cfg.window_tokens == 320
    assert cfg.llm_tokens_per_second == pytest.approx(6.4)
    assert cfg.speech.frame_rate_hz == 50.0
    assert cfg.speech.frames_per_chunk == 1500
    assert cfg.speech.chunk_samples == 480000
    assert cfg.visual.num_image_tokens == 257
    assert cfg.decode_config() == {"fps": 2.0, "image_size": 224, "sample_rate_hz": 16000}


def test_slots_derive_from_fps():
    cfg = tiny_config().replace(windows=WindowConfig(fps=1.0, frames_per_window=4, stride_frames=4))
    assert cfg.audio_slots_per_frame == 50  # 50 Hz speech at 1 FPS
    assert cfg.slots_per_frame == 50  # more speech slots than 32 visual queries: visual half is padded
    assert cfg.window_tokens == 200
    assert cfg.llm_tokens_per_second == pytest.approx(32 * 1.0 / 4)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_config_json_round_trip(name):
    cfg = preset_config(name)
    again = FavorConfig.from_json(cfg.to_json())
    assert again == cfg
    assert json.loads(cfg.to_json())["causal_qformer"]["mask_mode"] == "causal"


def test_bad_configs_are_refused():
    with pytest.raises(ConfigError):
        CausalQFormerConfig(mask_mode="future")
    with pytest.raises(ConfigError):  # 10 frames x 32 slots do not fit 100 positions
        tiny_config().replace(causal_qformer=CausalQFormerConfig(hidden_size=32, num_attention_heads=2,
                                                                 max_position_embeddings=100))
    with pytest.raises(ConfigError):
        WindowConfig(frames_per_window=4, stride_frames=5)
    with pytest.raises(ConfigError):
        FavorConfig.from_dict({**tiny_config().to_dict(), "no_such_field": 1})
    with pytest.raises(ConfigError):
        preset_config("favor-70b")


def test_demo_is_small_and_published_is_large():
    demo, big = demo_config(), favor_13b_config()
    assert demo.visual.image_size <= 96 and demo.visual.hidden_size <= 128 and demo.speech.d_model <= 128
    assert big.visual.hidden_size == 1408 and big.visual.num_hidden_layers == 39 and big.visual.patch_size == 14
    assert big.speech.d_model == 1280 and big.speech.encoder_layers == 32 and big.speech.num_mel_bins == 80
    assert big.causal_qformer.hidden_size == 768 and big.causal_qformer.num_hidden_layers == 2
    assert big.llm_hidden_size == 5120
