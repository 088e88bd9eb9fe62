import dataclasses

import pytest
import torch
import torch.nn.functional as F

from favor_ops.retrieval.heads import RetrievalHeads, RetrievalHeadsConfig, identity_heads


def test_head_shapes_and_unit_norm():
    torch.manual_seed(0)
    heads = RetrievalHeads(RetrievalHeadsConfig(window_dim=32, embed_dim=16, text_hidden_dim=8))
    q = torch.randn(3, 5, 32)  # (W, Nq, H)
    assert heads.window_tokens(q).shape == (3, 5, 16)
    assert torch.allclose(heads.window_tokens(q).norm(dim=-1), torch.ones(3, 5), atol=1e-5)
    assert heads.text(torch.randn(4, 384)).shape == (4, 16)
    assert heads.audio(q).shape == (3, 16) and heads.visual(q).shape == (3, 16)
    assert abs(heads.scale().item() - 1 / 0.07) < 1e-3


def test_identity_heads_pass_vectors_through():
    heads = identity_heads(4)
    q = torch.tensor([[[3.0, 0.0, 4.0, 0.0], [0.0, 2.0, 0.0, 0.0]]])  # (1, 2, 4)
    assert torch.allclose(heads.window_tokens(q), torch.tensor([[[0.6, 0.0, 0.8, 0.0], [0.0, 1.0, 0.0, 0.0]]]))
    text = torch.zeros(1, 384)
    text[0, 1], text[0, 300] = 1.0, 5.0  # dims past E are dropped
    assert torch.allclose(heads.text(text), torch.tensor([[0.0, 1.0, 0.0, 0.0]]))
    # audio/visual: mean over tokens, then normalised: mean = (1.5, 1, 2, 0) / |.|
    expected = torch.tensor([1.5, 1.0, 2.0, 0.0]) / torch.tensor([1.5, 1.0, 2.0, 0.0]).norm()
    assert torch.allclose(heads.audio(q)[0], expected, atol=1e-6)
    assert heads.cfg.embed_dim == 4 and not any(p.requires_grad for p in heads.parameters())



def _frame_heads(L=3, E=8, D=4, kernel=1):
    """Frame heads whose per-frame networks pass feature 0 of the frame (kernel 1) or of the frame and its two
    neighbours summed (kernel 3) through: k = E // L = 2 outputs (x0, 0) per frame."""
    heads = RetrievalHeads(RetrievalHeadsConfig(window_dim=4, embed_dim=E, text_hidden_dim=0, av_frames=L,
                                                modality_dim=D, av_frame_hidden_dim=2, av_frame_kernel=kernel))
    with torch.no_grad():
        for net in (heads.audio_proj, heads.visual_proj):
            net[0].weight.zero_()
            net[0].weight[0, 0, :] = 1.0  # hidden unit 0 = sum over the kernel's frames of feature 0
            net[0].bias.copy_(torch.tensor([3.0, 0.0]))  # GELU(x + 3) - GELU(3): 0 for x = 0, ~x for small x
            net[2].weight.copy_(torch.tensor([[1.0, 0], [0, 0]])[:, :, None])
            net[2].bias.copy_(torch.tensor([-torch.nn.functional.gelu(torch.tensor(3.0)).item(), 0.0]))
    return heads


def test_frame_av_vectors_compare_what_is_heard_and_seen_at_the_same_moment():
    """av_frames: frame l of the audio is compared with frame l of the picture only; a mean pools timing away."""
    heads = _frame_heads()
    heard = torch.zeros(1, 3, 4)  # (W, L, D): something is heard at frame 0
    heard[0, 0, 0] = 1.0
    seen_same, seen_later = torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)
    seen_same[0, 0, 0] = 1.0  # the picture pulses at frame 0
    seen_later[0, 2, 0] = 1.0  # the picture pulses at frame 2
    with torch.no_grad():
        a, same, later = heads.audio(heard), heads.visual(seen_same), heads.visual(seen_later)
    assert a.shape == (1, 8) and torch.allclose(a, torch.tensor([[1.0, 0, 0, 0, 0, 0, 0, 0]]), atol=1e-6)
    assert abs(float(a @ same.T) - 1.0) < 1e-6 and abs(float(a @ later.T)) < 1e-6
    pooled = RetrievalHeads(RetrievalHeadsConfig(window_dim=4, embed_dim=8, text_hidden_dim=0))
    with torch.no_grad():
        assert torch.allclose(pooled.visual(seen_same), pooled.visual(seen_later))  # mean over frames: same


def test_frame_kernel_lets_a_frame_see_its_neighbours():
    heard = torch.zeros(1, 3, 4)  # (W, L, D): something is heard at frame 1
    heard[0, 1, 0] = 1.0
    with torch.no_grad():
        alone = _frame_heads(kernel=1).audio(heard)[0, :6].view(3, 2)[:, 0]  # (L,) feature 0 per frame (E pads 2)
        context = _frame_heads(kernel=3).audio(heard)[0, :6].view(3, 2)[:, 0]
    assert abs(alone[0]) < 1e-5 and alone[1] > 0.5 and abs(alone[2]) < 1e-5
    assert (context > 0).all() and torch.allclose(context, context[1].expand(3))  # frames 0 and 2 see frame 1


def test_frame_av_vectors_of_a_short_window_count_its_real_frames_only():
    """A window's padded frames (past its file's end) give features even from zero inputs (the networks' biases);
    with a frame_mask they are zeroed, so cos(audio, visual) is the agreement of the real frames alone."""
    torch.manual_seed(0)
    cfg = RetrievalHeadsConfig(window_dim=4, embed_dim=8, text_hidden_dim=0, av_frames=4, modality_dim=4)
    heads = RetrievalHeads(cfg)
    real = torch.tensor([[True, True, False, False]])  # (W, L): a 1 s window of 4 frames at 2 FPS
    heard, seen = torch.randn(1, 4, 4), torch.randn(1, 4, 4)
    heard[:, 2:], seen[:, 2:] = 0.0, 0.0  # padding reads zero means (frame_modality_means)
    with torch.no_grad():
        a, v = heads.audio(heard, real), heads.visual(seen, real)
        a_open, v_open = heads.audio(heard), heads.visual(seen)
        per_frame_a = heads.audio_proj(heard.transpose(1, 2)).transpose(1, 2)  # (W, L, k = 2)
        per_frame_v = heads.visual_proj(seen.transpose(1, 2)).transpose(1, 2)
    assert torch.count_nonzero(a[0, 4:]) == 0 and torch.count_nonzero(v[0, 4:]) == 0  # frames 2, 3 and E's pad
    expected = F.cosine_similarity(per_frame_a[:, :2].flatten(1), per_frame_v[:, :2].flatten(1))
    torch.testing.assert_close((a * v).sum(-1), expected)
    assert not torch.allclose((a_open * v_open).sum(-1), expected)  # unmasked, the padding's features count
    masked_off = RetrievalHeads(dataclasses.replace(cfg, av_mask_padding=False))
    masked_off.load_state_dict(heads.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(masked_off.audio(heard, real), a_open)


def test_heads_saved_before_padding_masks_load_with_them_off():
    saved = RetrievalHeadsConfig(av_frames=10, modality_dim=64).to_dict()
    del saved["av_mask_padding"]
    assert RetrievalHeadsConfig.from_dict(saved).av_mask_padding is False
    assert RetrievalHeadsConfig().av_mask_padding is True


def test_frame_av_vectors_check_the_frame_count():
    with pytest.raises(ValueError, match="3 frames per window, got 4"):
        _frame_heads().audio(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="modality_dim"):
        RetrievalHeads(RetrievalHeadsConfig(window_dim=4, embed_dim=8, av_frames=3))
    with pytest.raises(ValueError, match="odd av_frame_kernel"):
        RetrievalHeads(RetrievalHeadsConfig(window_dim=4, embed_dim=8, av_frames=3, modality_dim=4, av_frame_kernel=2))


def test_frame_vectors_are_per_frame_unit_vectors_that_see_only_their_kernel():
    """frame_vectors: (W, L, D) -> (W, L, E) unit-norm; with a 3-frame kernel, frame l reads frames l-1..l+1 only."""
    torch.manual_seed(0)
    heads = RetrievalHeads(RetrievalHeadsConfig(window_dim=4, embed_dim=8, text_hidden_dim=0, modality_dim=4,
                                                frame_vectors=True, frame_vector_hidden_dim=16))
    means = torch.randn(2, 6, 4)  # (W, L, D)
    changed = means.clone()
    changed[:, 5] += 3.0  # perturb the last frame
    with torch.no_grad():
        a, v, a2 = heads.frame_audio(means), heads.frame_visual(means), heads.frame_audio(changed)
    assert a.shape == v.shape == (2, 6, 8)
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(2, 6))
    torch.testing.assert_close(a2[:, :4], a[:, :4])  # frames 0..3 do not see frame 5
    assert not torch.allclose(a2[:, 4:], a[:, 4:])  # frames 4 and 5 do
    assert not torch.allclose(a, v)  # two heads


def test_heads_without_frame_vectors_say_so():
    heads = RetrievalHeads(RetrievalHeadsConfig(window_dim=4, embed_dim=8, text_hidden_dim=0))
    with pytest.raises(ValueError, match="no frame vectors"):
        heads.frame_audio(torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="frame_vectors needs modality_dim"):
        RetrievalHeads(RetrievalHeadsConfig(window_dim=4, embed_dim=8, frame_vectors=True))


def test_frame_vectors_leave_the_other_heads_initial_weights_unchanged():
    """One seed gives the same window/text/AV heads with or without frame vectors (they are built last), so adding
    them does not change the window stage's model."""
    cfg = RetrievalHeadsConfig(window_dim=4, embed_dim=8, modality_dim=4, av_frames=2)
    torch.manual_seed(0)
    plain = RetrievalHeads(cfg).state_dict()
    torch.manual_seed(0)
    with_frames = RetrievalHeads(dataclasses.replace(cfg, frame_vectors=True)).state_dict()
    assert set(with_frames) - set(plain) and all(k.startswith("frame_") for k in set(with_frames) - set(plain))
    for k, v in plain.items():
        torch.testing.assert_close(with_frames[k], v, msg=k)
