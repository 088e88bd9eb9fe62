"""Synthetic audio-visual corpus with exact ground truth (what is seen, said and heard, and when).

Public API:
    synthesize_corpus(out_dir, n_videos, seed, include_bad=False, min_duration_s=1.0,
                      max_duration_s=180.0, progress=True) -> list[dict]   (favor_ops.corpus.synth)
    read_manifest(dir) -> list[dict]                                      (favor_ops.corpus.manifest)
    plan_corpus(n_videos, seed, ...) -> tuple[ClipPlan, ...]              (favor_ops.corpus.plan, pure)
"""

from favor_ops.corpus.manifest import MANIFEST_NAME, read_manifest
from favor_ops.corpus.plan import CorpusConfig, plan_corpus
from favor_ops.corpus.synth import synthesize_corpus

__all__ = ["MANIFEST_NAME", "CorpusConfig", "plan_corpus", "read_manifest", "synthesize_corpus"]
