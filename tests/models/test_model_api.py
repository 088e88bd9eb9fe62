import numpy as np
import pytest
import torch

from favor_ops.models.favor_model import ModelInputError
from tests.models import tiny_model  # noqa: F401  (fixture)

SR = 16000


def _frames(n, size, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def _audio(seconds, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def test_preprocess_normalises_with_the_clip_statistics(tiny_model):
    cfg = tiny_model.config.visual
    frames = np.zeros((2, cfg.image_size, cfg.image_size, 3), dtype=np.uint8)
    frames[1] = 255
    px = tiny_model.preprocess_frames(frames)
    assert px.shape == (2, 3, cfg.image_size, cfg.image_size) and px.dtype == torch.float32
    for c in range(3):
        assert px[0, c, 0, 0].item() == pytest.approx(-cfg.image_mean[c] / cfg.image_std[c], rel=1e-6)
        assert px[1, c, 5, 7].item() == pytest.approx((1 - cfg.image_mean[c]) / cfg.image_std[c], rel=1e-6)
    resized = tiny_model.preprocess_frames(np.full((1, 48, 80, 3), 255, dtype=np.uint8))  # any size in
    assert resized.shape == (1, 3, cfg.image_size, cfg.image_size)
    assert resized[0, 0, 3, 3].item() == pytest.approx((1 - cfg.image_mean[0]) / cfg.image_std[0], rel=1e-5)


def test_bad_inputs_raise_typed_errors(tiny_model):
    with pytest.raises(ModelInputError):
        tiny_model.preprocess_frames(np.zeros((4, 32, 32), dtype=np.uint8))
    with pytest.raises(ModelInputError):
        tiny_model.preprocess_frames(np.zeros((1, 32, 32, 3), dtype=np.float32))
    with pytest.raises(ModelInputError):
        tiny_model.encode_speech(np.zeros((2, 100), dtype=np.float32))
    with pytest.raises(ModelInputError):
        tiny_model.encode_frames(torch.zeros(1, 3, 8, 8))


def test_encode_frames_shape_dtype_and_per_frame_independence(tiny_model):
    cfg = tiny_model.config
    frames = _frames(5, cfg.visual.image_size)
    tokens = tiny_model.encode_frames(tiny_model.preprocess_frames(frames))
    assert tokens.shape == (5, cfg.visual.num_query_tokens, cfg.modality_width) and tokens.dtype == torch.float32
    alone = tiny_model.encode_frames(tiny_model.preprocess_frames(frames[3:4]))
    torch.testing.assert_close(alone[0], tokens[3], rtol=1e-5, atol=1e-5)
    assert (tokens[0] - tokens[1]).abs().max() > 1e-4  # different frames, different tokens


def test_instruction_conditions_the_visual_qformer(tiny_model):
    px = tiny_model.preprocess_frames(_frames(1, tiny_model.config.visual.image_size))
    with_instruction = tiny_model.encode_frames(px)
    saved = tiny_model.config.visual.instruction_token_ids
    try:
        tiny_model.set_instruction_ids([3, 9])
        other = tiny_model.encode_frames(px)
    finally:
        tiny_model.set_instruction_ids(saved)
    assert tiny_model.config.visual.instruction_token_ids == saved
    assert (with_instruction - other).abs().max() > 1e-5


def test_75_s_of_audio_is_three_chunks_and_150_frames_of_slots(tiny_model):
    cfg = tiny_model.config
    audio = _audio(75)
    chunks = tiny_model.speech.split_chunks(audio)
    assert [len(c) for c in chunks] == [30 * SR, 30 * SR, 15 * SR]
    speech = tiny_model.encode_speech(audio)
    assert speech.shape == (3750, cfg.modality_width) and speech.dtype == torch.float32  # 75 s x 50 Hz, no truncation
    n_frames = tiny_model.count_frames(0, len(speech), has_video=False, has_audio=True)
    assert n_frames == 150  # 75 s x 2 FPS
    batch = tiny_model.build_window_batch(np.arange(15), n_frames, None, speech, n_visual_frames=0,
                                          n_audio_frames=len(speech))
    S = cfg.slots_per_frame
    per_frame = batch.audio_mask.reshape(15 * 10, S).sum(1)  # real audio slots per frame
    assert per_frame.tolist() == [25] * 150
    # Frame 37's slots hold speech frames 925..949, in order.
    slots = batch.slots.reshape(150, S, -1)[37, :25, cfg.modality_width:]
    torch.testing.assert_close(slots, speech[925:950])
    assert not batch.visual_mask.any()  # audio-only: visual half masked ...
    assert batch.slots[..., : cfg.modality_width].abs().max() == 0  # ... and zero


def test_chunked_speech_equals_encoding_each_chunk_alone(tiny_model):
    audio = _audio(35)
    whole = tiny_model.encode_speech(audio)
    first = tiny_model.encode_speech(audio[: 30 * SR])
    second = tiny_model.encode_speech(audio[30 * SR:])
    assert len(whole) == 1750 and len(first) == 1500 and len(second) == 250
    torch.testing.assert_close(whole, torch.cat([first, second]), rtol=1e-5, atol=1e-5)


def test_encode_windows_video_with_audio(tiny_model):
    cfg = tiny_model.config
    frames = _frames(23, cfg.visual.image_size)  # 11.5 s at 2 FPS -> 3 windows, the last with 3 frames
    visual = tiny_model.encode_frames(tiny_model.preprocess_frames(frames))
    speech = tiny_model.encode_speech(_audio(11.5))
    assert len(speech) == 575
    out = tiny_model.encode_windows(visual, speech, duration_s=11.5)
    H = cfg.causal_qformer.hidden_size
    assert out.query_tokens.shape == (3, cfg.causal_qformer.num_query_tokens, H)
    assert out.query_tokens.dtype == torch.float32
    assert out.t_start_s.tolist() == [0.0, 5.0, 10.0]
    assert out.t_end_s.tolist() == [5.0, 10.0, 11.5]
    assert out.window_index.tolist() == [0, 1, 2]
    assert out.window_mask.tolist() == [True, True, True]
    assert out.frame_mask.sum(1).tolist() == [10, 10, 3]
    projected = tiny_model.project(out.query_tokens)
    assert projected.shape == (3, 32, cfg.llm_hidden_size) and projected.dtype == torch.float32
    # Windows are independent: encoding the first 20 frames alone gives the same first two windows.
    head = tiny_model.encode_windows(visual[:20], speech[:500])
    torch.testing.assert_close(head.query_tokens, out.query_tokens[:2], rtol=1e-5, atol=1e-5)


def test_modalities_mask_the_missing_half(tiny_model):
    cfg = tiny_model.config
    visual = tiny_model.encode_frames(tiny_model.preprocess_frames(_frames(10, cfg.visual.image_size)))
    speech = tiny_model.encode_speech(_audio(5))
    D, S = cfg.modality_width, cfg.slots_per_frame
    silent = tiny_model.build_window_batch(np.arange(1), 10, visual, None, n_visual_frames=10, n_audio_frames=0)
    assert not silent.audio_mask.any() and int(silent.visual_mask.sum()) == 10 * 32
    assert silent.slots[..., D:].abs().max() == 0
    # A still image with 5 s of audio: the one frame is repeated over the audio's 10 frames.
    still = tiny_model.encode_windows(visual[:1], speech, is_still_image=True)
    batch = tiny_model.build_window_batch(np.arange(1), 10, visual[:1], speech, n_visual_frames=1,
                                          n_audio_frames=len(speech), is_still_image=True)
    frames = batch.slots.reshape(10, S, 2 * D)
    for k in range(10):
        assert torch.equal(frames[k, :32, :D], visual[0])
    assert len(still) == 1 and still.t_end_s.tolist() == [5.0]
    # Audio-only and video-only differ from audio-visual.
    both = tiny_model.encode_windows(visual, speech)
    audio_only = tiny_model.encode_windows(None, speech)
    video_only = tiny_model.encode_windows(visual, None)
    assert audio_only.has_video is False and video_only.has_audio is False
    assert (both.query_tokens - audio_only.query_tokens).abs().max() > 1e-5
    assert (both.query_tokens - video_only.query_tokens).abs().max() > 1e-5
    empty = tiny_model.encode_windows(None, None)
    assert len(empty) == 0 and empty.query_tokens.shape == (0, 32, cfg.causal_qformer.hidden_size)


def test_training_forward_has_gradients_and_diversity_loss(tiny_model):
    cfg = tiny_model.config
    g = torch.Generator().manual_seed(0)
    visual = torch.randn(12, 32, cfg.modality_width, generator=g)
    speech = torch.randn(300, cfg.modality_width, generator=g, requires_grad=True)
    batch = tiny_model.build_window_batch(np.arange(2), 12, visual, speech, n_visual_frames=12, n_audio_frames=300)
    out = tiny_model(batch.slots, batch.visual_mask, batch.audio_mask)
    assert out.llm_tokens.shape == (2, 32, cfg.llm_hidden_size)
    assert 0 < out.diversity_loss.item() <= cfg.diversity_weight
    (out.llm_tokens.sum() + out.diversity_loss).backward()
    assert speech.grad is not None and speech.grad[:300].abs().sum() > 0
    assert tiny_model.causal_qformer.query_tokens.grad is not None
    tiny_model.zero_grad(set_to_none=True)
