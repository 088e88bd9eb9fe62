"""MaxSim of text vectors with the shown windows' tokens: the one score the QA side reads from the aligned model.

    window_maxsim(window_tokens, vectors)[w, k] = max over window w's tokens t of  t . vectors[k]

`favor search` ranks windows by the same score (cosine, the store's tokens and the text head's vectors are unit
vectors). The question match (window_channels), the grounding of question words (question_grounding) and the heard
words (heard_words) are all this matrix for different texts.
"""

from __future__ import annotations

import numpy as np


def window_maxsim(window_tokens: list[np.ndarray], vectors: np.ndarray) -> np.ndarray:
    """(W, K) in the dtype of `vectors` (K, E): each window's tokens (Nq, E) against each vector."""
    vectors = np.asarray(vectors)
    if not window_tokens:
        return np.zeros((0, len(vectors)), vectors.dtype)
    return np.stack([(np.asarray(t, vectors.dtype) @ vectors.T).max(axis=0) for t in window_tokens])
