"""Slow: train the demo preset on a fresh synthetic corpus (seed A) and evaluate on a held-out one (seed B): search
first, then question answering (the QA stage trained on the same corpus over the same aligned checkpoint, scored
through `favor eval`'s QA hook).

Set FAVOR_ALIGN_CORPUS_CACHE=DIR to keep the two generated corpora between runs (their directory names carry a hash
of the generator settings; a corpus is generated when its manifest is missing). Thresholds are the targets of
cross-modal search and of question answering (docs/evaluation.md).
"""

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import pytest

TRAIN_SEED, EVAL_SEED = 1001, 2002
TRAIN_VIDEOS, EVAL_VIDEOS = 120, 40  # the demo's training corpus (training profile); a default-profile held-out one
MIN_DURATION_S, MAX_DURATION_S = 15.0, 30.0

# Training is seeded (one seed, one model: tests/training/test_align.py), so this module measures the same models on
# every run. Latest, with the top hit as `favor search` returns it (docs/evaluation.md, "Search: one seed, one
# model"): single R@1 0.91 / R@5 1.00, joint R@1 0.77, top-hit IoU 0.512 (top single window 0.492), AV match 0.93;
# QA with frame grounding and recombined clips labelled frame by frame (docs/evaluation.md, "Question answering:
# recombined windows labelled frame by frame"; 35 min for the module): AV match 0.98, when 0.98, order 0.91, said
# while 0.85. Before the frame-by-frame labels: said while 0.79; before frame grounding: 0.59, order 0.63.
# Earlier, unseeded runs (train seed 1001 -> held-out seed 2002, defaults, 17 min training incl. decode):
# single-modality R@1 0.97 / R@5 0.99 (visual 0.96, word 0.97, sound 1.00), joint R@1 0.77, top-hit IoU 0.53,
# AV match 0.93; a second training seed: 0.93 / 0.99, joint 0.87, IoU 0.52, AV 0.93 (docs/evaluation.md,
# "Spoken words"). QA after the QA stage's defaults (one run of this module, 16 min of QA training): said while
# 0.64, order 0.78, when 0.95, AV match 0.98 (docs/evaluation.md, "Question answering: window channels").


def _corpus(root: Path, name: str, n: int, seed: int, profile: str) -> Path:
    from favor_ops.corpus.plan import CORPUS_PROFILES
    from favor_ops.corpus.synth import synthesize_corpus

    cfg = CORPUS_PROFILES[profile]
    generator = hashlib.sha256(json.dumps(dataclasses.asdict(cfg), sort_keys=True).encode()).hexdigest()[:8]
    out = root / f"{name}-n{n}-s{seed}-{int(MIN_DURATION_S)}-{int(MAX_DURATION_S)}-{profile}-{generator}"
    if not (out / "manifest.jsonl").is_file():
        synthesize_corpus(out, n_videos=n, seed=seed, min_duration_s=MIN_DURATION_S, max_duration_s=MAX_DURATION_S,
                          progress=False, cfg=cfg)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(train corpus, held-out corpus, aligned checkpoint, what training reported): the demo preset trained once."""
    from favor_ops.training.align import AlignConfig, train_align

    root = Path(os.environ.get("FAVOR_ALIGN_CORPUS_CACHE") or tmp_path_factory.mktemp("align_quality"))
    train_dir = _corpus(root, "train", TRAIN_VIDEOS, TRAIN_SEED, "training")
    eval_dir = _corpus(root, "eval", EVAL_VIDEOS, EVAL_SEED, "default")
    out = tmp_path_factory.mktemp("align_ckpt")
    t0 = time.time()
    summary = train_align(train_dir, out, AlignConfig(progress=False))
    return train_dir, eval_dir, out, {"train_s": round(time.time() - t0, 1), "summary": summary}


@pytest.mark.slow
def test_align_demo_generalises_to_a_held_out_corpus(trained):
    from favor_ops.retrieval.aligned_model import load_aligned_model
    from favor_ops.retrieval.evaluate import evaluate_retrieval

    train_dir, eval_dir, out, training = trained
    result = evaluate_retrieval(load_aligned_model(str(out)), eval_dir)
    print(json.dumps({**training, "eval": result}, indent=1))
    text, av = result["text"], result["av"]
    assert text["single"]["n"] >= 30 and text["joint"]["n"] >= 10 and av["n"] >= 20
    assert text["single"]["r1"] >= 0.8 and text["single"]["r5"] >= 0.95
    for kind in ("visual", "word", "sound"):
        assert text[kind]["r1"] >= 0.8, kind
    assert text["joint"]["r1"] >= 0.7
    assert text["single"]["iou"] >= 0.5
    assert av["accuracy"] >= 0.9


@pytest.fixture(scope="module")
def qa_metrics(trained, tmp_path_factory):
    """QA per question type on the held-out corpus, through `favor eval`'s QA hook, after the QA stage (defaults)."""
    from favor_ops.corpus.manifest import read_manifest
    from favor_ops.evaluation.aveb import default_qa_hook
    from favor_ops.retrieval.aligned_model import load_aligned_model
    from favor_ops.training.qa_train import QATrainConfig, train_qa

    train_dir, eval_dir, aligned_dir, _ = trained
    out = tmp_path_factory.mktemp("qa_ckpt")
    t0 = time.time()
    summary = train_qa(train_dir, str(aligned_dir), out, QATrainConfig(), progress=False)
    train_s = time.time() - t0
    records = [r for r in read_manifest(eval_dir) if r.get("kind") != "bad" and not r.get("broken")]
    metrics = default_qa_hook(str(out), load_aligned_model(str(out)), eval_dir, records, out)
    print(json.dumps({"train_s": round(train_s, 1), "summary": summary,
                      "qa": {k: v for k, v in metrics.items() if k != "examples"}}, indent=1))
    assert "status" not in metrics, metrics
    return metrics


@pytest.mark.slow
def test_qa_demo_answers_when_and_audio_match_on_a_held_out_corpus(qa_metrics):
    for qtype in ("said_while", "order", "when", "av_match"):
        assert qa_metrics[qtype]["n"] >= 20, qtype
    assert qa_metrics["av_match"]["value"] >= 0.9
    assert qa_metrics["when"]["value"] >= 0.9  # within one window of the truth


@pytest.mark.slow
def test_qa_demo_reads_the_order_on_a_held_out_corpus(qa_metrics):
    assert qa_metrics["order"]["value"] >= 0.8  # per-frame grounding orders two events of one window too


@pytest.mark.slow
def test_qa_demo_reads_what_is_said_while_a_shape_is_shown_on_a_held_out_corpus(qa_metrics):
    # recombined training clips labelled frame by frame teach the word heard during the shape's frames
    assert qa_metrics["said_while"]["value"] >= 0.8
