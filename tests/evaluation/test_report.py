import json
import math

from favor_ops.evaluation.metrics_table import markdown_table
from favor_ops.evaluation.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_bytes=2000, min_side=100):
    from PIL import Image

    data = open(path, "rb").read()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) >= min_bytes, (path, len(data))
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG" and min(img.size) >= min_side, img.size


def _run(scale: float) -> dict:
    return {"tasks": {"text.single.r1": {"value": 0.6 * scale, "n": 20},
                      "text.joint.r1": {"value": 0.4 * scale, "n": 8},
                      "text.single.iou": {"value": 0.3 * scale, "n": 20},
                      "av.swap_accuracy": {"value": 0.55 * scale, "n": 300},
                      "av.audio_to_video.r1": {"value": float("nan"), "n": 0}},
            "qa_metrics": {"status": "no QA model in checkpoint"}, "transcript_wer": {"status": "not configured"}}


def test_single_run_report(tmp_path):
    metrics = {"model": "/ckpt/demo", "corpus": None, "windows": 40, "files": 8, "source": {"kind": "direct"},
               **_run(1.0)}
    paths = write_report(metrics, tmp_path / "r")
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())  # strict JSON: NaN became null
    assert saved["format"] == "favor-eval" and saved["version"] == 1 and saved["created_at"]
    assert saved["tasks"]["av.audio_to_video.r1"] == {"value": None, "n": 0}
    assert saved["tasks"]["text.single.r1"] == {"value": 0.6, "n": 20}
    assert [p.rsplit("/", 1)[1] for p in paths["plots"]] == ["tasks.png"]  # one run: no comparison
    assert_png(paths["plots"][0])
    html = (tmp_path / "r" / "report.html").read_text()
    assert "tasks.png" in html and "comparison.png" not in html
    assert "no QA model in checkpoint" in html and "not configured" in html
    assert "Text→window R@1, single modality" in html
    assert not (tmp_path / "r" / "comparison.png").exists()


def test_ablation_report_has_a_comparison_plot(tmp_path):
    metrics = {"model": "ckpt", **_run(1.0), "ablations": {"train_corpus": "/c", "budget": {"steps": 3}, "runs": {
        "full": {"status": "ok", **_run(0.9)},
        "released": {"status": "ok", **_run(0.7)},
        "no_causal": {"status": "unavailable", "missing": "no mask mode 'none'"},
    }}}
    paths = write_report(metrics, tmp_path)
    names = [p.rsplit("/", 1)[1] for p in paths["plots"]]
    assert names == ["tasks.png", "comparison.png"]
    for p in paths["plots"]:
        assert_png(p)
    html = (tmp_path / "report.html").read_text()
    assert "<th>released</th>" in html and "no mask mode" in html
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert markdown_table(saved) == markdown_table(metrics)
    assert saved["ablations"]["runs"]["released"]["tasks"]["text.single.r1"]["value"] == 0.7 * 0.6
    assert not math.isnan(saved["ablations"]["runs"]["full"]["tasks"]["text.single.r1"]["value"])


def test_report_without_any_number_still_writes_html(tmp_path):
    paths = write_report({"tasks": {}, "qa_metrics": {"status": "no QA model in checkpoint"}}, tmp_path)
    assert paths["plots"] == []
    assert "no plots" in (tmp_path / "report.html").read_text()


def test_thumbnails_skip_missing_files(tmp_path):
    examples = [{"kind": "visual", "query": "a red circle", "clip_id": "x", "file": "gone.mp4", "t_start": 0.0,
                 "t_end": 5.0, "score": 0.5, "relevant": True}]
    paths = write_report({"tasks": {"text.single.r1": {"value": 1.0, "n": 1}}, "examples": examples,
                          "corpus": str(tmp_path / "nowhere")}, tmp_path / "r")
    assert paths["thumbnails"] == []
    html = (tmp_path / "r" / "report.html").read_text()
    assert "a red circle" in html and "no video" in html
