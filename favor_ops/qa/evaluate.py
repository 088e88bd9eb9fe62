"""QA accuracy on a synthetic corpus: exact match per question type, "when" within one window of the truth.

    evaluate_qa(qa_model, pairs, features) -> {"said_while": {"value": 0.9, "n": 40}, ..., "overall": {...}}

"said while" and "order" are also split by QAPair.shares_window (`said_while_shared_window` /
`said_while_own_window`, `order_shared_window` / `order_own_window`): whether what the question tells apart falls
in one 5 s window, the unit the stored tokens describe.

`features.windows(clip_id, swapped_audio=...)` supplies each clip's window tokens (ClipWindowFeatures for a corpus
on disk; the same tokens the index stores).
"""

from __future__ import annotations

from collections import defaultdict

from favor_ops.qa.answer_match import exact_match, when_correct
from favor_ops.qa.questions import QAPair


def is_correct(pair: QAPair, predicted: str, window_s: float) -> bool:
    if pair.qtype == "when" and pair.truth_s is not None:
        return when_correct(predicted, pair.truth_s, window_s)
    return exact_match(predicted, pair.answer)


def predict(qa_model, pairs: list[QAPair], features, *, batch_size: int | None = None, progress=None
            ) -> list[str]:
    """Answers of `pairs` in order, generated in batches."""
    batch_size = batch_size or qa_model.cfg.generation.batch_size
    out: list[str] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        prompts = [qa_model.prompt(features.windows(p.clip_id, swapped_audio=p.swapped_audio), p.question)
                   for p in chunk]
        out += qa_model.generate(prompts)
        if progress is not None:
            progress(len(chunk))
    return out


def score_answers(pairs: list[QAPair], predicted: list[str], window_s: float) -> dict[str, dict]:
    hits: dict[str, list[bool]] = defaultdict(list)
    for pair, answer in zip(pairs, predicted):
        ok = is_correct(pair, answer, window_s)
        hits[pair.qtype].append(ok)
        hits["overall"].append(ok)
        if pair.shares_window is not None:  # "said while" and "order", split by QAPair.shares_window
            hits[f"{pair.qtype}_{'shared' if pair.shares_window else 'own'}_window"].append(ok)
    return {k: {"value": round(sum(v) / len(v), 4), "n": len(v)} for k, v in sorted(hits.items())}


def evaluate_qa(qa_model, pairs: list[QAPair], features, *, window_s: float = 5.0, progress=None) -> dict:
    predicted = predict(qa_model, pairs, features, progress=progress)
    metrics = score_answers(pairs, predicted, window_s)
    metrics["examples"] = [{"question_id": p.question_id, "question": p.question, "truth": p.answer,
                            "answer": a, "correct": is_correct(p, a, window_s)} for p, a in zip(pairs[:20], predicted)]
    return metrics
