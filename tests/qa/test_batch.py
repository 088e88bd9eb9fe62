"""Batch QA (`favor ask --questions`) on the planted store: answers, error rows, resuming, the answers table,
and a kill in the middle of 200 questions (slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from favor_ops.qa.batch import read_done_ids, run_batch_qa
from tests.qa.conftest import QUESTION, TRAINED


def _write_questions(path: Path, lines: list) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def _answers(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_answers_and_error_rows_nothing_lost(qa_store, qa_checkpoint, tmp_path):
    questions = _write_questions(tmp_path / "q.jsonl", [
        {"question_id": "a", "video_id": "aa11", "question": QUESTION},
        {"question_id": "c", "video_id": "cc33", "question": QUESTION},
        {"question_id": "unknown", "video_id": "ffff", "question": QUESTION},
        {"question_id": "empty", "video_id": "aa11", "question": "  "},
        "{not json",
        {"question_id": "a", "video_id": "cc33", "question": QUESTION},  # duplicate id
    ])
    out = tmp_path / "a.jsonl"
    summary = run_batch_qa(str(qa_store.uri), str(questions), str(out), str(qa_checkpoint), batch_size=2,
                           show_progress=False)
    rows = {r["question_id"]: r for r in _answers(out)}
    assert summary.questions == 6 and summary.answered == 2 and summary.failed == 4 and summary.skipped == 0
    assert rows["a"]["answer"] == TRAINED["aa11"] and rows["c"]["answer"] == TRAINED["cc33"]
    assert rows["a"]["error"] is None and rows["a"]["evidence"] == [[0.0, 2.0], [2.0, 4.0], [4.0, 6.0]]
    assert "unknown video id" in rows["unknown"]["error"] and rows["unknown"]["answer"] is None
    assert "empty question" in rows["empty"]["error"]
    assert "malformed JSON on line 5" in rows["line:5"]["error"]
    assert "duplicate question_id" in rows["a#line:6"]["error"]
    table = qa_store.answers_df()
    assert sorted(table["question_id"]) == sorted(rows)
    assert table.set_index("question_id").loc["a", "answer"] == TRAINED["aa11"]


def test_resume_skips_answered_and_drops_a_torn_line(qa_store, qa_checkpoint, tmp_path):
    questions = _write_questions(tmp_path / "q.jsonl", [
        {"question_id": f"q{i}", "video_id": "aa11" if i % 2 else "cc33", "question": QUESTION} for i in range(5)])
    out = tmp_path / "a.jsonl"
    run_batch_qa(str(qa_store.uri), str(questions), str(out), str(qa_checkpoint), batch_size=2,
                 write_answers_table=False, show_progress=False)
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])  # a kill mid-write
    assert read_done_ids(out) == {"q0", "q1", "q2"}
    summary = run_batch_qa(str(qa_store.uri), str(questions), str(out), str(qa_checkpoint), batch_size=2,
                           write_answers_table=False, show_progress=False)
    assert summary.skipped == 3 and summary.answered == 2
    ids = [r["question_id"] for r in _answers(out)]
    assert sorted(ids) == [f"q{i}" for i in range(5)]  # each exactly once


def test_ask_cli_one_question_and_bad_input(qa_store, qa_checkpoint):
    def favor(*args):
        return subprocess.run([sys.executable, "-m", "pipelines.cli.main", "ask", *map(str, args)],
                              capture_output=True, text=True, timeout=300)

    ok = favor("aa11", QUESTION, "--db", qa_store.uri, "--model", qa_checkpoint, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["answer"] == TRAINED["aa11"]
    for args, message in ((("ffff", QUESTION), "unknown video id"), (("aa11", " "), "empty question")):
        bad = favor(*args, "--db", qa_store.uri, "--model", qa_checkpoint)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
    no_model = favor("aa11", QUESTION, "--db", qa_store.uri, "--model", "tiny")
    assert no_model.returncode == 2 and "no QA model" in no_model.stderr


@pytest.mark.slow
def test_a_killed_batch_of_200_resumes_with_no_duplicate_or_missing_answer(qa_store, qa_checkpoint, tmp_path):
    questions = _write_questions(tmp_path / "q.jsonl", [
        {"question_id": f"q{i:03d}", "video_id": "aa11" if i % 2 else "cc33", "question": QUESTION}
        for i in range(200)])
    out = tmp_path / "a.jsonl"
    cmd = [sys.executable, "-m", "pipelines.cli.main", "ask", "--questions", str(questions), "--out", str(out),
           "--db", str(qa_store.uri), "--model", str(qa_checkpoint), "--batch", "4", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 40):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(read_done_ids(out))
    assert 0 < done_before < 200, "the kill should land mid-batch"
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["skipped"] == done_before and summary["answered"] == 200 - done_before
    rows = _answers(out)
    assert sorted(r["question_id"] for r in rows) == [f"q{i:03d}" for i in range(200)]
    assert all(r["answer"] == TRAINED[r["video_id"]] for r in rows)
