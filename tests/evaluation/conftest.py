"""A tiny synthetic corpus shared by the evaluation tests (3 clips of 6-8 s + the 4 bad inputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

EVAL_CORPUS_VIDEOS = 3
EVAL_CORPUS_SEED = 11


@pytest.fixture(scope="session")
def eval_corpus(tmp_path_factory) -> Path:
    from favor_ops.corpus.synth import synthesize_corpus

    out = tmp_path_factory.mktemp("eval_corpus") / "corpus"
    synthesize_corpus(out, n_videos=EVAL_CORPUS_VIDEOS, seed=EVAL_CORPUS_SEED, include_bad=True, min_duration_s=6.0,
                      max_duration_s=8.0, progress=False)
    return out
