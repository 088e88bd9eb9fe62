"""`favor eval` end to end on a tiny corpus (3 clips + 4 bad inputs) with the `tiny` preset (identity heads)."""

import contextlib
import io
import json
from pathlib import Path

import pytest

from tests.evaluation.test_report import assert_png

TINY_BUDGET = ["--steps", "1", "--visual-steps", "1", "--speech-steps", "1", "--batch", "2"]


def favor(*argv: str) -> tuple[int, str, str]:
    from pipelines.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_eval_end_to_end_with_the_tiny_preset(eval_corpus, tmp_path):
    from favor_ops.evaluation.metrics_table import markdown_table

    report = tmp_path / "report"
    code, out, err = favor("eval", "--corpus", eval_corpus, "--model", "tiny", "--out", report, "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics == json.loads((report / "metrics.json").read_text())
    assert metrics["format"] == "favor-eval" and metrics["files"] == 3 and metrics["windows"] >= 3
    assert metrics["source"] == {"kind": "direct"}
    tasks = metrics["tasks"]
    for kind in ("single", "visual", "word", "sound", "joint"):
        for m in ("r1", "r5", "r10", "iou", "iou_window", "iou_oracle"):
            assert f"text.{kind}.{m}" in tasks
    for key in ("av.swap_accuracy", "av.audio_to_video.r1", "av.video_to_audio.r1"):
        assert key in tasks
    for key, m in tasks.items():
        assert set(m) == {"value", "n"}, key
        assert isinstance(m["n"], int) and m["n"] >= 0
        if m["n"] == 0:
            assert m["value"] is None, key
        if m["value"] is not None:
            assert 0.0 <= m["value"] <= 1.0, key
    assert tasks["text.single.r1"]["n"] > 0 and tasks["av.swap_accuracy"]["n"] > 0
    assert metrics["qa_metrics"] == {"status": "no QA model in checkpoint"}
    assert metrics["transcript_wer"] == {"status": "not configured"}
    assert metrics["examples"] and all(e["file"] for e in metrics["examples"])
    assert_png(report / "tasks.png")
    thumbs = sorted((report / "thumbs").glob("example_*.png"))
    assert thumbs
    for t in thumbs:
        assert_png(t, min_bytes=200, min_side=64)
    html = (report / "report.html").read_text()
    assert "tasks.png" in html and "thumbs/example_0.png" in html

    code, table, err = favor("eval", "--table", report / "metrics.json")
    assert code == 0, err
    assert table == markdown_table(metrics)
    assert table.startswith("| Task | Value | n |\n") and "| AV match accuracy (true vs swapped audio) |" in table


def test_eval_ablations_train_each_change_with_the_same_budget(eval_corpus, tmp_path):
    report = tmp_path / "r"
    code, out, err = favor("eval", "--corpus", eval_corpus, "--model", "tiny", "--out", report, "--examples", "0",
                           "--ablation", "full", "--ablation", "released", "--ablation", "div_0.01",
                           "--ablation", "no_causal", *TINY_BUDGET)
    assert code == 0, err
    metrics = json.loads((report / "metrics.json").read_text())
    ab = metrics["ablations"]
    assert ab["budget"]["steps"] == 1 and ab["budget"]["seed"] == 0 and ab["budget"]["model"] == "tiny"
    runs = ab["runs"]
    assert list(runs) == ["full", "no_causal", "released", "div_0.01"]
    assert runs["full"]["status"] == "ok" and runs["released"]["status"] == "ok"
    assert runs["no_causal"]["status"] == "ok"
    assert runs["no_causal"]["settings"] == {"mask_mode": "none", "audio_sync": "frame", "diversity_weight": 0.01}
    no_causal = json.loads((report / "ablations" / "no_causal" / "ckpt" / "favor_config.json").read_text())["config"]
    assert no_causal["causal_qformer"]["mask_mode"] == "none"
    assert runs["div_0.01"]["status"] == "same_as" and runs["div_0.01"]["same_as"] == "full"  # tiny's lambda: 0.01
    assert runs["div_0.01"]["tasks"] == runs["full"]["tasks"]
    assert runs["released"]["settings"] == {"mask_mode": "released", "audio_sync": "frame", "diversity_weight": 0.01}
    saved = json.loads((report / "ablations" / "released" / "ckpt" / "favor_config.json").read_text())["config"]
    assert saved["causal_qformer"]["mask_mode"] == "released"
    for name in ("full", "released"):
        assert runs[name]["train"]["steps"] == 1
        assert set(runs[name]["tasks"]) == set(metrics["tasks"])
        assert not (report / "ablations" / name / "ckpt" / "window_cache").exists()
    assert "| Task | n | checkpoint | full | no_causal | released | div_0.01 |" in out
    assert_png(report / "comparison.png")


def _store_rows(corpus: Path, model_version: str, corrupt_word: bool):
    """Window + video rows of every usable clip encoded with the tiny model, transcripts = the manifest words
    (midpoint in the window), one word replaced when corrupt_word; returns (windows, videos, n_words)."""
    import datetime as dt

    import numpy as np

    from favor_ops.corpus.manifest import read_manifest
    from favor_ops.media.decode import DecodeConfig, decode
    from favor_ops.retrieval.aligned_model import load_aligned_model
    from favor_ops.store.catalog import video_id_from_sha256

    aligned = load_aligned_model("tiny")
    cfg = DecodeConfig(**aligned.favor.config.decode_config())
    windows, videos, n_words, corrupted = [], [], 0, False
    for rec in read_manifest(corpus):
        if rec["kind"] == "bad":
            continue
        vid = video_id_from_sha256(rec["sha256"])
        vec = aligned.encode_decoded(decode(str(corpus / rec["file"]), cfg))
        for i in range(len(vec)):
            t0, t1 = float(vec.t_start_s[i]), float(vec.t_end_s[i])
            words = sorted((ev["t_start"], ev["word"]) for seg in rec["segments"] for ev in seg["audio_events"]
                           if ev["type"] == "word" and t0 <= (ev["t_start"] + ev["t_end"]) / 2 < t1)
            words = [w for _, w in words]
            n_words += len(words)
            if corrupt_word and words and not corrupted:
                words[0], corrupted = "zzz", True
            windows.append(dict(video_id=vid, window_idx=i, t_start=t0, t_end=t1,
                                tokens=[np.asarray(t, np.float32) for t in vec.tokens[i]], pooled=vec.pooled[i],
                                audio_vec=vec.audio_vec[i], visual_vec=vec.visual_vec[i], has_audio=vec.has_audio,
                                has_video=vec.has_video, transcript=" ".join(words), model_version=model_version))
        videos.append(dict(video_id=vid, uri=str(corpus / rec["file"]), duration_s=rec["duration_s"], fps=2.0,
                           has_audio=vec.has_audio, has_video=vec.has_video, n_windows=len(vec),
                           model_version=model_version, indexed_at=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
                           status="indexed", run_id="eval-test"))
    return windows, videos, n_words


def test_eval_on_a_store_scores_the_stored_vectors_and_their_transcripts(eval_corpus, tmp_path):
    import pyarrow as pa

    from favor_ops.store.commit import commit_run
    from favor_ops.store.feature_store import FeatureStore
    from favor_ops.store.shards import write_shard
    from pipelines.cli.eval_command import expected_model_version

    version = expected_model_version("tiny")
    assert version and version.startswith("tiny-")
    db = tmp_path / "db"
    windows, videos, n_words = _store_rows(eval_corpus, version, corrupt_word=True)
    assert n_words > 0
    store = FeatureStore.open(str(db), dim=len(windows[0]["pooled"]), n_query_tokens=len(windows[0]["tokens"]))
    store.ensure_tables()
    write_shard(str(db), "eval-test", "windows", pa.Table.from_pylist(windows, schema=store.schema("windows")))
    write_shard(str(db), "eval-test", "videos", pa.Table.from_pylist(videos, schema=store.schema("videos")))
    commit_run(store, "eval-test")

    code, _, err = favor("eval", "--corpus", eval_corpus, "--model", "tiny", "--out", tmp_path / "direct",
                         "--examples", "0")
    assert code == 0, err
    code, _, err = favor("eval", "--corpus", eval_corpus, "--model", "tiny", "--db", db, "--out", tmp_path / "s",
                         "--examples", "0")
    assert code == 0, err
    direct = json.loads((tmp_path / "direct" / "metrics.json").read_text())
    stored = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert stored["source"]["kind"] == "store" and stored["source"]["files_found"] == 3
    assert stored["source"]["files_missing"] == [] and stored["source"]["model_versions"] == [version]
    assert stored["windows"] == direct["windows"]
    for key, m in direct["tasks"].items():
        assert stored["tasks"][key]["n"] == m["n"], key
        assert stored["tasks"][key]["value"] == pytest.approx(m["value"], abs=1e-6), key
    assert stored["transcript_wer"] == {"value": pytest.approx(1 / n_words), "n": n_words}

    from favor_ops.evaluation.aveb import usable_records, windows_from_store

    with pytest.raises(ValueError, match="the store holds model versions"):
        windows_from_store(FeatureStore.open(str(db)), usable_records(eval_corpus), "another-model-v1")
    # the same weights indexed with an ASR store "<version>+<asr version>": those rows are the model's too
    asr_db = tmp_path / "asr-db"
    asr_windows, asr_videos, _ = _store_rows(eval_corpus, version + "+whisper-tiny-en-0123", corrupt_word=False)
    asr_store = FeatureStore.open(str(asr_db), dim=len(windows[0]["pooled"]), n_query_tokens=len(windows[0]["tokens"]))
    asr_store.ensure_tables()
    write_shard(str(asr_db), "eval-asr", "windows", pa.Table.from_pylist(asr_windows, schema=asr_store.schema("windows")))
    write_shard(str(asr_db), "eval-asr", "videos", pa.Table.from_pylist(asr_videos, schema=asr_store.schema("videos")))
    commit_run(asr_store, "eval-asr")
    found = windows_from_store(FeatureStore.open(str(asr_db)), usable_records(eval_corpus), version)
    assert len(found.windows.clip_ids) == stored["windows"]
    with pytest.raises(ValueError):  # a mere prefix of the version is another model
        windows_from_store(FeatureStore.open(str(asr_db)), usable_records(eval_corpus), version[:-1])


def test_bad_input_is_one_line_and_exit_2(eval_corpus, tmp_path):
    code, _, err = favor("eval", "--corpus", tmp_path, "--model", "tiny", "--out", tmp_path / "o")
    assert code == 2 and "manifest.jsonl" in err and len(err.strip().splitlines()) == 1
    code, _, err = favor("eval", "--model", "tiny")
    assert code == 2 and "--corpus" in err
    code, _, err = favor("eval", "--table", tmp_path / "m.json", "--model", "tiny")
    assert code == 2 and "alone" in err
    code, _, err = favor("eval", "--table", tmp_path / "missing.json")
    assert code == 2 and "no metrics file" in err
    code, _, err = favor("eval", "--corpus", eval_corpus, "--model", "tiny", "--out", tmp_path / "o",
                         "--ablation", "no_such")
    assert code == 2 and "unknown ablation" in err
    code, _, err = favor("eval", "--corpus", eval_corpus, "--model", "tiny", "--out", tmp_path / "o",
                         "--db", tmp_path / "no_db")
    assert code == 2 and "no store" in err
    assert not (tmp_path / "o").exists()
