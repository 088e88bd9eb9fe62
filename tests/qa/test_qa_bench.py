"""`favor bench qa` at the tiny preset: both sides generate exactly the same number of tokens."""

import json
import subprocess
import sys

import pytest


def test_bench_qa_prints_batched_vs_single_ratio():
    out = subprocess.run([sys.executable, "-m", "pipelines.cli.main", "bench", "qa", "--preset", "tiny",
                          "--questions", "6", "--batch", "3", "--windows", "2", "--new-tokens", "3", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["questions"] == 6 and r["new_tokens_per_question"] == 3
    single, batched = r["one_at_a_time"], r["batched"]
    assert single["questions_per_s"] > 0 and batched["questions_per_s"] > 0
    # identical work: tokens / questions the same on both sides
    assert single["tokens_per_s"] / single["questions_per_s"] == pytest.approx(
        batched["tokens_per_s"] / batched["questions_per_s"], rel=0.02)
    assert r["ratio_batched_vs_single"] == pytest.approx(single["seconds"] / batched["seconds"], rel=0.02)


def test_bench_qa_7b_refuses_cpu():
    out = subprocess.run([sys.executable, "-m", "pipelines.cli.main", "bench", "qa", "--preset", "7b"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "--device cuda" in out.stderr and "Traceback" not in out.stderr
