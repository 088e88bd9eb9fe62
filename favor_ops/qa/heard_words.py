"""Heard words: which of the QA model's answer words each shown window sounds like, as a word embedding on its tokens.

The aligned checkpoint's text head scores every word the QA model was trained to name (QAConfig.heard_words, the
words spoken in its training corpus) against a window, as `favor search` scores a word query:

    score(window, word) = MaxSim of text_vec("someone says {word}") with the window's tokens   (cosine)
    weights(window)     = softmax over the words of score / T                                   (K,)

The window's projected tokens get `heard_word_scale * weights @ word_embeddings` added, where a word's embedding is
the mean of the LLM's input embeddings of its tokens: the word the window sounds like, in the LLM's own vocabulary.

Why: a small LM trained from scratch learns to read a window's word from its tokens only for the few hundred labelled
windows it is trained on, and names words the clip never says on new ones, while the aligned model's word search
reads them (docs/evaluation.md, "Question answering: heard words"). The LLM still picks the window and writes the
answer; the hint is soft, so a close second word stays visible to it.
"""

from __future__ import annotations

import numpy as np

from favor_ops.qa.window_maxsim import window_maxsim
from favor_ops.retrieval.queries import TEMPLATES

HEARD_WORD_TEMPLATE = TEMPLATES["word"][0]  # "someone says {word}": a word query of `favor search`


def heard_word_phrases(words: tuple[str, ...] | list[str]) -> list[str]:
    """The text each word is encoded as."""
    return [HEARD_WORD_TEMPLATE.format(word=w) for w in words]


def heard_word_weights(window_tokens: list[np.ndarray], word_vectors: np.ndarray, temperature: float) -> np.ndarray:
    """(W, K) float32 softmax weights over the K words for each window; window_tokens are (Nq, E) each, word_vectors
    (K, E) unit vectors."""
    if not window_tokens:
        return np.zeros((0, len(word_vectors)), np.float32)
    scores = window_maxsim(window_tokens, np.asarray(word_vectors, np.float64))  # (W, K)
    shifted = (scores - scores.max(axis=1, keepdims=True)) / temperature
    weights = np.exp(shifted)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)
