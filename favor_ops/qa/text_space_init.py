"""Start a scratch LM in the retrieval text space, so window tokens and words are comparable from step 0.

The stored window tokens live in the aligned model's text space: the cosine of a window token with the text vector
of "someone says apple" is what search ranks by. A scratch LM starts with random word embeddings, and with a hundred
training clips it never learns to tell which word a window holds. When the LM is as wide as the tokens (the `demo`
preset: both 128), `init_from_text_space` sets

    embed_tokens[v] = encode_text(token string of v)   (unit norm, (V, E); "##ing" -> "ing"; tied with lm_head)
    projection      = identity                          (window tokens enter the LM unchanged)

so a window token of a window that says "apple" already lies near the embedding (and the output row) of "apple", and
"red circle" in the question near the tokens of windows that show one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def can_init_from_text_space(qa_model) -> bool:
    """A scratch LM exactly as wide as the stored tokens."""
    return qa_model.cfg.lm_source is None and qa_model.base_lm.config.hidden_size == qa_model.cfg.window_dim


def vocabulary_texts(tokenizer) -> list[str]:
    """The text of every token id: WordPiece continuations without their "##"."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return [t[2:] if t.startswith("##") and len(t) > 2 else t for t in tokens]


@torch.no_grad()
def init_from_text_space(qa_model, encode_text: Callable[[list[str]], torch.Tensor], batch_size: int = 512) -> None:
    """Word embeddings <- encode_text of each token's text; projection <- identity (see module doc)."""
    if not can_init_from_text_space(qa_model):
        raise ValueError(f"text-space init needs a scratch LM of width {qa_model.cfg.window_dim} (the tokens' width)")
    texts = vocabulary_texts(qa_model.tokenizer)
    embed = qa_model.base_lm.get_input_embeddings()
    for start in range(0, len(texts), batch_size):
        vecs = encode_text(texts[start:start + batch_size])  # (b, E) unit norm
        embed.weight[start:start + len(vecs)] = vecs.to(embed.weight.device, embed.weight.dtype)
    qa_model.projection.weight.copy_(torch.eye(qa_model.cfg.window_dim, dtype=qa_model.projection.weight.dtype))
    qa_model.projection.bias.zero_()
