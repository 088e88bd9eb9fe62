import json

import pytest

from favor_ops.evaluation.metrics_table import markdown_table, table_from_file, task_label


def test_single_run_table_is_exact():
    metrics = {
        "tasks": {
            "av.swap_accuracy": {"value": 0.5234, "n": 17624},
            "text.joint.r1": {"value": None, "n": 0},
            "custom.thing": {"value": 1, "n": 2},
            "text.single.r1": {"value": 0.64, "n": 69},
        },
        "qa_metrics": {"status": "no QA model in checkpoint"},
        "transcript_wer": {"status": "not configured"},
    }
    assert markdown_table(metrics) == (
        "| Task | Value | n |\n"
        "|---|---:|---:|\n"
        "| Text→window R@1, single modality (visual+word+sound) | 0.640 | 69 |\n"
        "| Text→window R@1, joint (seen and heard at the same moment) | n/a | 0 |\n"
        "| AV match accuracy (true vs swapped audio) | 0.523 | 17624 |\n"
        "| custom.thing | 1.000 | 2 |\n"
        "\n"
        "- QA: no QA model in checkpoint\n"
        "- transcript WER: not configured\n"
    )


def _ablation_metrics():
    full_tasks = {"text.single.r1": {"value": 0.75, "n": 10}, "av.video_to_audio.r1": {"value": 0.5, "n": 3}}
    return {
        "tasks": {"text.single.r1": {"value": 0.5, "n": 10}, "av.video_to_audio.r1": {"value": 0.25, "n": 4}},
        "qa_metrics": {"overall": {"value": 0.8, "n": 100}, "said_while": {"value": 0.9, "n": 40},
                       "examples": [{"question": "q", "answer": "a"}]},
        "transcript_wer": {"value": 0.125, "n": 8},
        "ablations": {"budget": {"steps": 1}, "runs": {
            "full": {"status": "ok", "tasks": full_tasks, "qa_metrics": {"status": "no QA model in checkpoint"},
                     "transcript_wer": {"status": "not configured"}},
            "no_sync": {"status": "unavailable", "missing": "no switch"},
            "div_0.01": {"status": "same_as", "same_as": "full", "tasks": full_tasks},
        }},
    }


def test_ablation_table_is_exact():
    assert markdown_table(_ablation_metrics()) == (
        "| Task | n | checkpoint | full | div_0.01 |\n"
        "|---|---:|---:|---:|---:|\n"
        "| Text→window R@1, single modality (visual+word+sound) | 10 | 0.500 | 0.750 | 0.750 |\n"
        "| Video→audio R@1 | 4 | 0.250 | 0.500 (n=3) | 0.500 (n=3) |\n"
        "| QA accuracy, said while | 40 | 0.900 | – | – |\n"
        "| QA accuracy, overall | 100 | 0.800 | – | – |\n"
        "| Transcript WER (lower is better) | 8 | 0.125 | – | – |\n"
        "\n"
        "- no_sync: not run: no switch\n"
        "- div_0.01: same configuration as full (same numbers)\n"
    )


def test_failures_are_noted_and_runs_without_numbers_dropped():
    metrics = {"tasks": {"text.single.r1": {"value": 0.5, "n": 10}},
               "qa_metrics": {"status": "error", "error": "RuntimeError: boom"},
               "ablations": {"runs": {
                   "full": {"status": "ok", "tasks": {"text.single.r1": {"value": 0.25, "n": 10}},
                            "qa_metrics": {"status": "error", "error": "KeyError: x"}},
                   "released": {"status": "failed", "error": "AlignTrainingError: too few windows"}}}}
    assert markdown_table(metrics) == (
        "| Task | n | checkpoint | full |\n"
        "|---|---:|---:|---:|\n"
        "| Text→window R@1, single modality (visual+word+sound) | 10 | 0.500 | 0.250 |\n"
        "\n"
        "- checkpoint: QA: error (RuntimeError: boom)\n"
        "- full: QA: error (KeyError: x)\n"
        "- released: failed (AlignTrainingError: too few windows)\n"
    )


def test_empty_metrics():
    assert markdown_table({}) == "_no metrics_\n"


def test_labels():
    assert task_label("text.word.iou") == "Text→window top-hit temporal IoU (search's merged span), spoken word"
    assert task_label("text.word.iou_window") == "Text→window top-window temporal IoU, spoken word"
    assert task_label("qa.sound_after") == "QA accuracy, sound after"
    assert task_label("something.else") == "something.else"


def test_table_from_file_reads_a_file_or_a_report_dir(tmp_path):
    metrics = _ablation_metrics()
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert table_from_file(tmp_path / "metrics.json") == markdown_table(metrics)
    assert table_from_file(tmp_path) == markdown_table(metrics)
    with pytest.raises(FileNotFoundError):
        table_from_file(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError):
        table_from_file(tmp_path / "bad.json")


def test_readme_results_block_is_replaced_and_nothing_else():
    from favor_ops.evaluation.metrics_table import RESULTS_END, RESULTS_START, replace_results_block

    text = f"intro\n{RESULTS_START}\nold table\n{RESULTS_END}\nafter\n"
    out = replace_results_block(text, "| Task | Value | n |\n", source="m.json")
    assert out.startswith(f"intro\n{RESULTS_START}\n") and out.endswith(f"{RESULTS_END}\nafter\n")
    assert "old table" not in out and "| Task | Value | n |" in out and "favor eval --table m.json" in out
    assert replace_results_block(out, "| Task | Value | n |\n", source="m.json") == out  # idempotent
    import pytest

    with pytest.raises(ValueError, match="results:start"):
        replace_results_block("no markers", "x", source="m.json")
