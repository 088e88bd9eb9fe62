import torch

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
