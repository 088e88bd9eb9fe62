"""Exact MaxSim over candidate token sets: the second step of pooled-ANN-then-re-rank search.

At large tables the `tokens` multivector index (one IVF entry per query token: 32 per window) is the costly one to
build and to probe. The scalable query path is: the C windows nearest to the query on the single `pooled` vector
(IVF_PQ, cheap), fetched together with their token sets, re-ranked by exact MaxSim here. Recall against an exact
MaxSim scan of the whole table is measured by `favor bench search --rerank-candidates C`.
"""

from __future__ import annotations

import numpy as np


def pooled_query(queries: np.ndarray) -> np.ndarray:
    """(Qq, D) query vectors -> (D,) unit vector for the pooled-ANN step (the normalised mean)."""
    mean = np.atleast_2d(np.asarray(queries, dtype=np.float32)).mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def token_sets(token_lists, n_rows: int, n_tokens: int, dim: int) -> np.ndarray:
    """Arrow list<fixed_size_list<float32, D>> column (n_tokens per row) -> (n_rows, n_tokens, D) float32."""
    if hasattr(token_lists, "combine_chunks"):
        token_lists = token_lists.combine_chunks()
    flat = token_lists.flatten().flatten().to_numpy(zero_copy_only=False)  # flatten() honours offsets and slices
    return flat.reshape(n_rows, n_tokens, dim)


def maxsim_scores(tokens: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """MaxSim of each candidate: mean over query vectors of max over its tokens of the cosine.

    tokens: (n, T, D); queries: (Qq, D); both are normalised here (cosine). Returns (n,) in [-1, 1], the same
    scale as LanceDB's cosine multivector score (1 - distance / Qq)."""
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    queries = queries / np.maximum(np.linalg.norm(queries, axis=-1, keepdims=True), 1e-12)
    tokens = tokens / np.maximum(np.linalg.norm(tokens, axis=-1, keepdims=True), 1e-12)
    sims = tokens @ queries.T  # (n, T, Qq)
    return sims.max(axis=1).mean(axis=1)  # (n,)
