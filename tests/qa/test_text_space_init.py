"""A scratch LM started in the text space: word rows are the text vectors of their tokens, tokens enter unchanged."""

from __future__ import annotations

import hashlib

import pytest
import torch

from favor_ops.qa.config import tiny_qa_config
from favor_ops.qa.qa_model import FavorQAModel
from favor_ops.qa.text_space_init import can_init_from_text_space, init_from_text_space, vocabulary_texts

WIDTH = 48  # the tiny preset's LM width


def text_vectors(texts: list[str]) -> torch.Tensor:
    """A stand-in text tower: a fixed unit vector per string."""
    rows = []
    for t in texts:
        seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little")
        v = torch.randn(WIDTH, generator=torch.Generator().manual_seed(seed))
        rows.append(v / v.norm())
    return torch.stack(rows)


def test_word_rows_are_the_text_vectors_of_their_tokens_and_the_projection_is_the_identity():
    torch.manual_seed(0)
    model = FavorQAModel.build(tiny_qa_config(window_dim=WIDTH))
    assert can_init_from_text_space(model)
    init_from_text_space(model, text_vectors, batch_size=4096)
    tok = model.tokenizer
    embed = model.base_lm.get_input_embeddings().weight
    for word in ("apple", "river", "[SEP]"):
        i = tok.convert_tokens_to_ids(word)
        assert torch.equal(embed[i], text_vectors([word])[0])
    ing = tok.convert_tokens_to_ids("##ing")
    assert vocabulary_texts(tok)[ing] == "ing" and torch.equal(embed[ing], text_vectors(["ing"])[0])
    assert model.base_lm.lm_head.weight.data_ptr() == embed.data_ptr()  # tied: the output rows too
    tokens = torch.randn(5, WIDTH)
    assert torch.equal(model.projection(tokens), tokens)


def test_a_model_narrower_or_wider_than_the_tokens_is_refused():
    model = FavorQAModel.build(tiny_qa_config(window_dim=32))
    assert not can_init_from_text_space(model)
    with pytest.raises(ValueError, match="width 32"):
        init_from_text_space(model, text_vectors)
