import numpy as np
import torch

from favor_ops.models.loading import load_favor_model
from favor_ops.retrieval.aligned_model import (
    RETRIEVAL_CONFIG_FILE,
    AlignedModel,
    is_aligned_checkpoint,
    load_aligned_model,
)
from favor_ops.retrieval.heads import RetrievalHeads, RetrievalHeadsConfig
from favor_ops.training.slot_state_cache import compute_slot_states, query_tokens_from_states


def _media(seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, size=(13, 32, 32, 3), dtype=np.uint8)  # 6.5 s at 2 FPS -> 2 windows
    audio = (0.1 * rng.standard_normal(16000 * 6 + 8000)).astype(np.float32)
    return frames, audio


def _aligned(seed=1):
    favor = load_favor_model("tiny")
    torch.manual_seed(seed)
    heads = RetrievalHeads(RetrievalHeadsConfig(window_dim=32, embed_dim=16, text_hidden_dim=8))
    return AlignedModel(favor, heads).eval()


def test_save_load_gives_identical_vectors(tmp_path):
    model = _aligned()
    frames, audio = _media()
    before = model.encode_media(frames, audio, duration_s=6.5)
    model.save(tmp_path / "ckpt")
    assert is_aligned_checkpoint(tmp_path / "ckpt") and (tmp_path / "ckpt" / RETRIEVAL_CONFIG_FILE).is_file()
    loaded = load_aligned_model(str(tmp_path / "ckpt"))
    after = loaded.encode_media(frames, audio, duration_s=6.5)
    assert loaded.embed_dim == 16 and len(after) == 2
    np.testing.assert_array_equal(before.tokens, after.tokens)
    np.testing.assert_array_equal(before.audio_vec, after.audio_vec)
    np.testing.assert_array_equal(before.visual_vec, after.visual_vec)
    np.testing.assert_array_equal(after.t_start_s, [0.0, 5.0])
    np.testing.assert_array_equal(after.t_end_s, [5.0, 6.5])
    texts = ["a red circle", "someone says apple"]
    assert torch.equal(model.encode_text(texts), loaded.encode_text(texts))
    assert np.allclose(np.linalg.norm(after.tokens, axis=-1), 1.0, atol=1e-5)


def test_plain_preset_gets_identity_heads():
    model = load_aligned_model("tiny")
    assert model.embed_dim == 32 and model.heads.cfg.identity
    q = torch.randn(2, 32, 32)
    vec = model.window_vectors(q, None, q)
    assert torch.allclose(vec["tokens"], torch.nn.functional.normalize(q, dim=-1), atol=1e-6)
    assert torch.equal(vec["audio_vec"], torch.zeros(2, 32))
    assert model.encode_text(["a red circle"]).shape == (1, 32)
    frames, _ = _media()
    assert model.encode_image_query(frames[0]).vector.shape == (32,)


def test_query_side_from_cached_slot_states_matches_the_model_forward():
    model = _aligned()
    favor = model.favor
    frames, audio = _media()
    visual = favor.encode_frames(favor.preprocess_frames(frames))
    speech = favor.encode_speech(audio)
    batch = favor.build_window_batch(np.array([0, 1]), 13, visual, speech, n_visual_frames=13,
                                     n_audio_frames=len(speech), duration_s=6.5)
    with torch.no_grad():
        reference = favor(batch.slots, batch.visual_mask, batch.audio_mask).query_tokens
        cached = compute_slot_states(favor, batch)
        fast = query_tokens_from_states(favor.causal_qformer, cached.states, cached.key_valid)
    assert torch.allclose(fast, reference, atol=2e-3)  # slot states are cached in float16
