import io
import json

import pytest

from favor_ops.bench.model_bench import run_model_bench
from favor_ops.models.flops import flops_per_video_second
from favor_ops.models.presets import tiny_config


def test_bench_reports_every_stage_with_config_flops():
    buf = io.StringIO()
    result = run_model_bench(preset="tiny", device="cpu", seconds=6.0, json=True, threads=1, out=buf)
    printed = json.loads(buf.getvalue())
    assert printed["preset"] == "tiny" and printed["frames"] == 12 and printed["video_seconds"] == 6.0
    flops = flops_per_video_second(tiny_config())
    stages = result["stages"]
    assert set(stages) == {"visual", "speech", "qformer", "total"}
    assert stages["visual"]["gflop_per_video_s"] == pytest.approx(flops["visual"] / 1e9)
    assert stages["qformer"]["gflop_per_video_s"] == pytest.approx((flops["qformer"] + flops["projection"]) / 1e9)
    for s in stages.values():
        assert s["wall_s"] > 0
        assert s["video_s_per_s"] == pytest.approx(6.0 / s["wall_s"])
    assert stages["total"]["wall_s"] == pytest.approx(sum(stages[k]["wall_s"] for k in ("visual", "speech", "qformer")))


def test_bench_human_output():
    buf = io.StringIO()
    run_model_bench(preset="tiny", device="cpu", seconds=1.0, threads=1, warmup=False, out=buf)
    text = buf.getvalue()
    assert "preset=tiny" in text and "video-s per wall-second" in text
    assert [line.split()[0] for line in text.splitlines()[4:8]] == ["visual", "speech", "qformer", "total"]
