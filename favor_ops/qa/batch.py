"""Batch QA: `favor ask --questions Q.jsonl --out A.jsonl` and the `answers` table.

Questions JSONL, one object per line: {"question_id": str, "video_id": str, "question": str}.
Answers JSONL, one object per line: {"question_id", "video_id", "question", "answer", "evidence": [[t0, t1], ...],
"model_version", "error"} — `error` is null when answered, else the reason (the line still counts as done).

Resumable: question ids already in OUT are skipped; answers are appended and fsync'ed one generation batch at a
time, and a torn last line left by a kill is dropped on the next start. A malformed question line becomes an error
row (its id is `line:<n>` when it has none); nothing else in the batch is lost.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from favor_ops.qa.evidence import QAInputError


@dataclass
class BatchQASummary:
    questions: int = 0
    answered: int = 0
    skipped: int = 0  # already in OUT (resumed)
    failed: int = 0  # error rows written this run
    elapsed_s: float = 0.0
    model_version: str = ""

    @property
    def questions_per_s(self) -> float:
        return self.answered / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "questions_per_s": round(self.questions_per_s, 3)}


@dataclass(frozen=True)
class QuestionLine:
    question_id: str
    video_id: str
    question: str
    error: str | None = None  # malformed line: why


def read_questions(path: str | Path) -> list[QuestionLine]:
    out, seen = [], set()
    for n, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            out.append(QuestionLine(f"line:{n}", "", "", f"malformed JSON on line {n}: {err}"))
            continue
        qid = str(obj.get("question_id") or f"line:{n}")
        if qid in seen:
            out.append(QuestionLine(f"{qid}#line:{n}", str(obj.get("video_id", "")), str(obj.get("question", "")),
                                    f"duplicate question_id {qid!r} on line {n}"))
            continue
        seen.add(qid)
        vid, question = obj.get("video_id"), obj.get("question")
        error = None
        if not isinstance(vid, str) or not vid.strip():
            error = f"line {n}: missing video_id"
        elif not isinstance(question, str) or not question.strip():
            error = f"line {n}: empty question"
        out.append(QuestionLine(qid, str(vid or ""), str(question or ""), error))
    return out


def read_done_ids(out_path: Path) -> set[str]:
    """Question ids already answered in OUT; drops a torn (unterminated or unparsable) last line."""
    if not out_path.exists():
        return set()
    raw = out_path.read_bytes()
    lines = raw.split(b"\n")
    good, done = [], set()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            done.add(json.loads(line)["question_id"])
            good.append(line)
        except (ValueError, KeyError):
            if i < len(lines) - 1:  # a bad line that is not the last one: keep it, it is not ours to drop
                good.append(line)
    cleaned = b"\n".join(good) + (b"\n" if good else b"")
    if cleaned != raw:
        out_path.write_bytes(cleaned)
    return done


def _append(out_path: Path, rows: list[dict]) -> None:
    with open(out_path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def run_batch_qa(db: str, questions_path: str, out_path: str, model: str | None = None, *,
                 batch_size: int | None = None, write_answers_table: bool = True, show_progress: bool = True,
                 device: str = "cpu") -> BatchQASummary:
    from favor_ops.qa.answerer import Answerer
    from favor_ops.store.feature_store import FeatureStore

    started = time.perf_counter()
    questions = read_questions(questions_path)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = read_done_ids(out)
    todo = [q for q in questions if q.question_id not in done]
    summary = BatchQASummary(questions=len(questions), skipped=len(questions) - len(todo))
    if not todo:
        summary.elapsed_s = time.perf_counter() - started
        return summary
    store = FeatureStore.open(db)
    answerer = Answerer.load(model, device=device)
    summary.model_version = answerer.model_version
    size = batch_size or answerer.qa.cfg.generation.batch_size
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="answering", unit="question", file=sys.stderr)
    for start in range(0, len(todo), size):
        chunk = todo[start:start + size]
        rows, ready = [], []
        for q in chunk:
            if q.error:
                rows.append(_row(q, None, [], answerer.model_version, q.error))
                continue
            try:
                ready.append((q, answerer.evidence(store, q.video_id, q.question)))
            except QAInputError as err:
                rows.append(_row(q, None, [], answerer.model_version, err.reason))
        if ready:
            try:
                answers = answerer.generate([q.question for q, _ in ready], [w for _, w in ready])
                rows += [_row(q, a, w, answerer.model_version, None) for (q, w), a in zip(ready, answers)]
            except Exception as err:  # noqa: BLE001 - a batch the model cannot run becomes error rows
                reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                rows += [_row(q, None, w, answerer.model_version, reason) for q, w in ready]
        _append(out, rows)
        if write_answers_table:
            store.upsert_answers([_table_row(r) for r in rows])
        summary.answered += sum(1 for r in rows if r["error"] is None)
        summary.failed += sum(1 for r in rows if r["error"] is not None)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _row(q: QuestionLine, answer: str | None, windows, model_version: str, error: str | None) -> dict:
    return {"question_id": q.question_id, "video_id": q.video_id, "question": q.question, "answer": answer,
            "evidence": [[w.t_start, w.t_end] for w in windows], "model_version": model_version, "error": error}


def _table_row(row: dict) -> dict:
    return {**row, "evidence": [{"t_start": a, "t_end": b} for a, b in row["evidence"]],
            "at": dt.datetime.now(dt.timezone.utc)}
