import math
from pathlib import Path

import numpy as np
import pytest

from favor_ops.evaluation.ablations import ABLATION_NAMES, get_ablations, load_base_align_config
from favor_ops.evaluation.aveb import (
    default_qa_hook,
    metric,
    reference_words,
    retrieval_tasks,
    transcript_wer,
    video_to_audio_metrics,
    word_edit_distance,
)
from favor_ops.retrieval.evaluate import CorpusWindows, av_matching_metrics


def _seg(t0, t1, word=None, word_span=None):
    events = [{"type": "word", "word": word, "t_start": word_span[0], "t_end": word_span[1]}] if word else []
    return {"t_start": t0, "t_end": t1, "visual": {"color": "red", "shape": "circle"},
            "audio": {"word": word, "sound": None, "tone_hz": None}, "audio_events": events}


def _windows(audio, visual, clip_ids=("a", "a", "b"), starts=(0.0, 5.0, 0.0), ends=(5.0, 10.0, 5.0)):
    n = len(clip_ids)
    return CorpusWindows(clip_ids=list(clip_ids), t_start=np.array(starts), t_end=np.array(ends),
                         tokens=np.zeros((n, 1, 3), np.float32), audio_vec=np.asarray(audio, np.float32),
                         visual_vec=np.asarray(visual, np.float32), has_audio=np.ones(n, bool),
                         has_video=np.ones(n, bool))


RECORDS = [{"clip_id": "a", "kind": "video", "segments": [_seg(0.0, 7.0, "apple", (1.0, 1.6)),
                                                          _seg(7.0, 10.0, "river", (8.0, 8.5))]},
           {"clip_id": "b", "kind": "video", "segments": [_seg(0.0, 5.0, "stone", (4.6, 5.2))]}]


def test_metric_maps_nan_and_empty_to_none():
    assert metric(0.25, 4) == {"value": 0.25, "n": 4}
    assert metric(float("nan"), 3) == {"value": None, "n": 3}
    assert metric(0.5, 0) == {"value": None, "n": 0}
    assert metric(np.float32(1.0), np.int64(2)) == {"value": 1.0, "n": 2}


def test_video_to_audio_r1_on_hand_set_vectors():
    # the example of tests/retrieval/test_evaluate_metrics.py: genuine pairs (0,2), (2,0), (1,2), (2,1)
    e = np.eye(3, dtype=np.float32)
    w = _windows([e[0], e[1], e[2]], [e[0], e[2], e[2]])
    v2a = video_to_audio_metrics(w, RECORDS)
    # i=0: v0.a0=1 > v0.a2=0 yes; i=1: v1.a1=0 > v1.a2=1? no; i=2: v2.a2=1 > v2.a0=0, v2.a1=0 yes -> 2/3
    assert v2a["n"] == 3 and abs(v2a["top1"] - 2 / 3) < 1e-9
    a2v = av_matching_metrics(w, RECORDS)
    tasks = retrieval_tasks({"single": {"n": 9, "r1": 0.5, "r5": 1.0, "r10": 1.0, "iou": 0.2,
                                        "iou_oracle": float("nan")}}, a2v, v2a)
    assert tasks["text.single.r1"] == {"value": 0.5, "n": 9}
    assert tasks["text.single.iou_oracle"] == {"value": None, "n": 9}
    assert tasks["av.swap_accuracy"] == {"value": 0.75, "n": 4}  # n = genuine (i, j) pairs
    assert tasks["av.audio_to_video.r1"] == {"value": pytest.approx(1 / 3), "n": 3}
    assert tasks["av.video_to_audio.r1"] == {"value": pytest.approx(2 / 3), "n": 3}
    assert all(set(v) == {"value", "n"} for v in tasks.values())


def test_word_error_rate():
    assert word_edit_distance(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert word_edit_distance(["a", "b"], []) == 2
    assert word_edit_distance([], ["a"]) == 1
    assert word_edit_distance(["a", "b", "c"], ["b", "c", "d"]) == 2
    # words by midpoint: a[0,5): apple (1.3); a[5,10): river (8.25); b[0,5): stone (4.9)
    assert reference_words(RECORDS, "a", 0.0, 5.0) == ["apple"]
    assert reference_words(RECORDS, "b", 0.0, 5.0) == ["stone"]
    w = _windows(np.zeros((3, 3)), np.zeros((3, 3)))
    assert transcript_wer(w, None, RECORDS) == {"status": "not configured"}
    assert transcript_wer(w, ["", " ", ""], RECORDS) == {"status": "not configured"}
    assert transcript_wer(w, ["Apple!", "river", "stone"], RECORDS) == {"value": 0.0, "n": 3}
    # one substitution + one insertion over 3 reference words
    assert transcript_wer(w, ["apple", "river bank", "stones"], RECORDS) == {"value": 2 / 3, "n": 3}


def test_qa_hook_without_a_qa_model(tmp_path):
    assert default_qa_hook("tiny", None, tmp_path, [], None) == {"status": "no QA model in checkpoint"}
    assert default_qa_hook(str(tmp_path), None, tmp_path, [], None) == {"status": "no QA model in checkpoint"}


def test_ablation_list():
    assert ABLATION_NAMES == ("full", "no_sync", "no_causal", "released", "div_0", "div_0.01", "div_0.1", "div_1.0")
    by_name = {a.name: a for a in get_ablations()}
    assert all(a.available for a in by_name.values())
    assert by_name["no_sync"].model_changes == {"audio_sync": "clip"}
    assert by_name["no_causal"].model_changes == {"mask_mode": "none"}
    assert by_name["released"].model_changes == {"mask_mode": "released"}
    assert [by_name[f"div_{x}"].model_changes["diversity_weight"] for x in ("0", "0.01", "0.1", "1.0")] == \
        [0.0, 0.01, 0.1, 1.0]
    assert [a.name for a in get_ablations(["div_0", "full"])] == ["full", "div_0"]
    with pytest.raises(ValueError, match="unknown ablation"):
        get_ablations(["no_such"])


def test_base_align_config_comes_from_the_checkpoint(tmp_path):
    import json

    cfg = load_base_align_config("tiny", steps=3, seed=None)
    assert cfg.model == "tiny" and cfg.steps == 3 and cfg.seed == 0
    (tmp_path / "align_config.json").write_text(json.dumps({"model": "demo", "steps": 77, "seed": 5, "old": 1}))
    cfg = load_base_align_config(str(tmp_path), visual_steps=2)
    assert (cfg.model, cfg.steps, cfg.seed, cfg.visual_steps) == ("demo", 77, 5, 2)
    assert not math.isnan(cfg.lr)


def _fake_qa_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    (ckpt / "qa").mkdir(parents=True)
    (ckpt / "qa" / "qa_config.json").write_text("{}")
    (ckpt / "qa" / "qa_model.safetensors").write_bytes(b"")
    return ckpt


def test_qa_hook_runs_favor_ops_qa_evaluate_when_the_checkpoint_has_a_qa_model(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import favor_ops.qa.evaluate as qa_evaluate
    import favor_ops.qa.qa_model as qa_model
    from favor_ops.models.presets import tiny_config

    calls = {}

    def fake_evaluate_qa(model, pairs, features, *, window_s=5.0, progress=None):
        calls.update(model=model, pairs=pairs, features=features, window_s=window_s)
        return {"overall": {"value": 1.0, "n": len(pairs)}}

    monkeypatch.setattr(qa_evaluate, "evaluate_qa", fake_evaluate_qa)
    monkeypatch.setattr(qa_model, "load_qa_model", lambda ckpt, device="cpu": ("qa-model", str(ckpt)))
    ckpt = _fake_qa_checkpoint(tmp_path)
    aligned = SimpleNamespace(favor=SimpleNamespace(config=tiny_config()), device="cpu")
    records = [{"clip_id": "a", "file": "a.mp4", "kind": "video", "sha256": "0" * 64, "has_audio": True,
                "has_video": True, "duration_s": 10.0, "segments": RECORDS[0]["segments"]}]
    out = default_qa_hook(str(ckpt), aligned, tmp_path, records, tmp_path / "work")
    assert calls["model"] == ("qa-model", str(ckpt)) and calls["window_s"] == 5.0
    assert out == {"overall": {"value": 1.0, "n": len(calls["pairs"])}}
    assert (tmp_path / "work" / "cache" / "qa_windows").is_dir()


def test_qa_hook_failure_becomes_a_status(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    import favor_ops.qa.qa_model as qa_model
    from favor_ops.models.presets import tiny_config

    def broken(ckpt, device="cpu"):
        raise RuntimeError("weights do not fit")

    monkeypatch.setattr(qa_model, "load_qa_model", broken)
    aligned = SimpleNamespace(favor=SimpleNamespace(config=tiny_config()), device="cpu")
    out = default_qa_hook(str(_fake_qa_checkpoint(tmp_path)), aligned, tmp_path, [], tmp_path / "w")
    assert out == {"status": "error", "error": "RuntimeError: weights do not fit"}
    assert "QA evaluation failed" in capsys.readouterr().err


def test_evaluation_package_imports_neither_beam_nor_dagster():
    import subprocess
    import sys

    code = ("import sys, favor_ops.evaluation.aveb, favor_ops.evaluation.ablations, favor_ops.evaluation.report, "
            "favor_ops.evaluation.metrics_table; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('apache_beam', 'dagster')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_failing_ablation_is_recorded_and_the_others_still_run(tmp_path, monkeypatch):
    import favor_ops.training.align as align
    from favor_ops.evaluation.ablations import run_ablations

    def broken_train(corpus, out, cfg, resume=False):
        raise align.AlignTrainingError(f"{corpus}: only 1 windows with ground truth; need >= 2")

    monkeypatch.setattr(align, "train_align", broken_train)
    base = load_base_align_config("tiny", steps=1)
    result = run_ablations(tmp_path / "c", tmp_path / "ab", base, evaluate=lambda ckpt: {}, names=["no_sync", "full"],
                           log=lambda msg: None)
    runs = result["runs"]
    assert runs["no_sync"]["status"] == "failed" and runs["no_sync"]["error"].startswith("AlignTrainingError:")
    assert runs["full"]["status"] == "failed" and runs["full"]["error"].startswith("AlignTrainingError:")
    assert result["budget"]["steps"] == 1 and result["budget"]["model"] == "tiny"


def test_base_qa_config_comes_from_the_checkpoints_qa_state(tmp_path):
    import torch

    from favor_ops.evaluation.ablations import load_base_qa_config
    from favor_ops.training.qa_train import QATrainConfig

    assert load_base_qa_config(str(tmp_path)) is None  # no QA model: no QA stage
    assert load_base_qa_config("tiny", steps=5).steps == 5  # a budget given: the defaults with it
    (tmp_path / "qa").mkdir()
    torch.save({"config": {"steps": 300, "batch_questions": 8, "lr": 5e-4, "seed": 3, "gone": 1}},
               tmp_path / "qa" / "qa_training_state.pt")
    cfg = load_base_qa_config(str(tmp_path))
    assert (cfg.steps, cfg.batch_questions, cfg.lr, cfg.seed) == (300, 8, 5e-4, 3)
    assert load_base_qa_config(str(tmp_path), steps=40).steps == 40
    assert load_base_qa_config(str(tmp_path), steps=0) is None
    assert QATrainConfig().steps != 300  # the numbers above came from the file


def test_every_ablation_run_trains_its_qa_stage_with_the_same_budget(tmp_path, monkeypatch):
    import favor_ops.training.align as align
    import favor_ops.training.qa_train as qa_train
    from favor_ops.evaluation.ablations import run_ablations
    from favor_ops.training.qa_train import QATrainConfig

    order = []

    def fake_align(corpus, out, cfg, resume=False):
        order.append(("align", Path(out).parent.name))
        return {"steps": cfg.steps}

    def fake_qa(corpus, model_spec, out=None, cfg=None, *, resume=False, progress=True):
        order.append(("qa", Path(model_spec).parent.name, cfg.steps, cfg.seed, out))
        return {"steps": cfg.steps}

    monkeypatch.setattr(align, "train_align", fake_align)
    monkeypatch.setattr(qa_train, "train_qa", fake_qa)
    base = load_base_align_config("tiny", steps=1)
    qa_cfg = QATrainConfig(steps=7, seed=2)
    result = run_ablations(tmp_path / "c", tmp_path / "ab", base, evaluate=lambda ckpt: {"tasks": {}},
                           names=["full", "no_sync"], log=lambda msg: None, qa_cfg=qa_cfg)
    assert order == [("align", "full"), ("qa", "full", 7, 2, None), ("align", "no_sync"), ("qa", "no_sync", 7, 2, None)]
    assert result["runs"]["no_sync"]["train_qa"] == {"steps": 7} and result["runs"]["full"]["status"] == "ok"
    assert result["budget"]["qa_steps"] == 7 and result["budget"]["qa_seed"] == 2
