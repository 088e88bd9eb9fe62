import dataclasses

import numpy as np
import pytest
import torch

from favor_ops.models.checkpoint import load_favor_checkpoint, read_favor_config
from favor_ops.models.loading import ModelLoadError, load_favor_model
from favor_ops.models.presets import tiny_config
from favor_ops.models.speech_encoder import SpeechEncoder
from favor_ops.models.visual_encoder import VisualEncoder
from tests.models import tiny_model  # noqa: F401  (fixture)


def _inputs(model, seed=0):
    rng = np.random.default_rng(seed)
    size = model.config.visual.image_size
    frames = rng.integers(0, 256, size=(12, size, size, 3), dtype=np.uint8)
    audio = (0.1 * rng.standard_normal(6 * 16000)).astype(np.float32)
    return frames, audio


def _run(model, frames, audio):
    visual = model.encode_frames(model.preprocess_frames(frames))
    speech = model.encode_speech(audio)
    out = model.encode_windows(visual, speech)
    return visual, speech, out.query_tokens, model.project(out.query_tokens)


def test_presets_are_deterministic(tiny_model):
    again = load_favor_model("tiny")
    for (k, a), (_, b) in zip(tiny_model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k


def test_save_load_is_bit_exact(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "ckpt")
    loaded = load_favor_model(str(tmp_path / "ckpt"))
    assert loaded.config == tiny_model.config
    assert read_favor_config(tmp_path / "ckpt") == tiny_model.config
    for (k, a), (k2, b) in zip(tiny_model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and a.dtype == b.dtype and torch.equal(a, b), k
    frames, audio = _inputs(tiny_model)
    for a, b in zip(_run(tiny_model, frames, audio), _run(loaded, frames, audio)):
        assert torch.equal(a, b)


def test_save_load_keeps_mask_mode_and_half_precision(tmp_path):
    model = load_favor_model("tiny", mask_mode="released")
    assert model.causal_qformer.mask_mode == "released"
    model.to(torch.float16).save_pretrained(tmp_path / "half")
    loaded = load_favor_checkpoint(tmp_path / "half")
    assert loaded.causal_qformer.mask_mode == "released"
    assert loaded.llm_proj.weight.dtype == torch.float16
    assert torch.equal(loaded.llm_proj.weight, model.llm_proj.weight)


def test_unknown_spec_is_a_typed_error(tmp_path):
    with pytest.raises(ModelLoadError):
        load_favor_model("no-such-preset")
    with pytest.raises(ModelLoadError):
        load_favor_model(str(tmp_path))  # a directory without a checkpoint


# ---------------------------------------------------------------- encoders from transformers checkpoints
def _tiny_instructblip(cfg):
    from transformers import InstructBlipConfig, InstructBlipForConditionalGeneration, LlamaConfig

    text = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    hf = InstructBlipConfig(vision_config=cfg.vision_hf_config().to_dict(),
                            qformer_config=cfg.qformer_hf_config().to_dict(), text_config=text.to_dict(),
                            num_query_tokens=cfg.num_query_tokens)
    torch.manual_seed(123)
    model = InstructBlipForConditionalGeneration(hf).eval()
    with torch.no_grad():
        model.query_tokens.normal_()  # distinct from any init we would do
    return model


def _tiny_whisper(cfg):
    from transformers import WhisperForConditionalGeneration

    torch.manual_seed(321)
    return WhisperForConditionalGeneration(cfg.whisper_hf_config()).eval()


@pytest.fixture(scope="module")
def pretrained_dirs(tmp_path_factory):
    cfg = tiny_config()
    root = tmp_path_factory.mktemp("pretrained")
    blip, whisper = _tiny_instructblip(cfg.visual), _tiny_whisper(cfg.speech)
    blip.save_pretrained(root / "instructblip", max_shard_size="100KB")  # sharded: exercises the index path
    whisper.save_pretrained(root / "whisper")
    return blip, whisper, str(root / "instructblip"), str(root / "whisper")


def test_visual_encoder_from_pretrained_matches_transformers(pretrained_dirs):
    blip, _, blip_dir, _ = pretrained_dirs
    cfg = tiny_config().visual
    encoder = VisualEncoder.from_pretrained(blip_dir, cfg).eval()
    assert encoder.cfg.source == blip_dir
    assert torch.equal(encoder.query_tokens, blip.query_tokens)
    for key, value in blip.vision_model.state_dict().items():
        assert torch.equal(encoder.vision_model.state_dict()[key], value), key
    px = torch.randn(3, 3, cfg.image_size, cfg.image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = encoder(px)
        image = blip.vision_model(pixel_values=px).last_hidden_state
        ids = torch.tensor([cfg.instruction_token_ids] * 3)
        ref = blip.qformer(input_ids=ids, attention_mask=torch.ones(3, 32 + ids.shape[1], dtype=torch.long),
                           query_embeds=blip.query_tokens.expand(3, -1, -1), encoder_hidden_states=image,
                           encoder_attention_mask=torch.ones(image.shape[:2], dtype=torch.long)).last_hidden_state
    torch.testing.assert_close(ours, ref[:, :32], rtol=0, atol=1e-6)


def test_speech_encoder_from_pretrained_matches_transformers(pretrained_dirs):
    _, whisper, _, whisper_dir = pretrained_dirs
    cfg = tiny_config().speech
    encoder = SpeechEncoder.from_pretrained(whisper_dir, cfg, out_width=32).eval()
    audio = (0.1 * np.random.default_rng(0).standard_normal(40 * 16000)).astype(np.float32)
    with torch.no_grad():
        ours = encoder.whisper_frames(audio)
        mel = encoder.log_mel(encoder.split_chunks(audio))
        ref = whisper.model.encoder(input_features=mel).last_hidden_state  # (2, 1500, d)
    assert ours.shape == (2000, cfg.d_model)
    torch.testing.assert_close(ours, torch.cat([ref[0], ref[1, :500]]), rtol=0, atol=1e-6)


def test_load_favor_model_with_encoder_sources(pretrained_dirs, tmp_path):
    blip, whisper, blip_dir, whisper_dir = pretrained_dirs
    cfg = tiny_config()
    model = load_favor_model("tiny", overrides={
        "visual": dataclasses.replace(cfg.visual, source=blip_dir),
        "speech": dataclasses.replace(cfg.speech, source=whisper_dir),
    })
    assert model.config.visual.source == blip_dir and model.config.speech.source == whisper_dir
    assert torch.equal(model.speech.encoder.conv1.weight, whisper.model.encoder.conv1.weight)
    assert torch.equal(model.visual.query_tokens, blip.query_tokens)
    # Our checkpoint holds the encoders: it reloads without their sources.
    model.save_pretrained(tmp_path / "with_sources")
    reloaded = load_favor_model(str(tmp_path / "with_sources"))
    assert torch.equal(reloaded.visual.query_tokens, blip.query_tokens)
    with pytest.raises(ModelLoadError):
        load_favor_model("tiny", overrides={"visual": dataclasses.replace(cfg.visual, source=str(tmp_path / "x"))})
