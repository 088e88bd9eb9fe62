"""`favor bench scaling`: the corpus cache, the process-tree memory sampler and the report's arithmetic (fast),
and one end-to-end run of the real index job at sizes 2 and 3 with the tiny preset (slow: two Beam jobs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from pipelines.bench.scaling_bench import (
    ProcessTreeSampler,
    ScalingBenchConfig,
    TreeMemory,
    choose_baseline,
    compare,
    ensure_corpora,
    format_report,
    parse_sizes,
    run_from_args,
    size_result,
)


def test_sizes_and_baseline():
    assert parse_sizes("10,100,1000") == (10, 100, 1000)
    with pytest.raises(ValueError):
        parse_sizes("10,x")
    with pytest.raises(ValueError):
        parse_sizes("0,5")
    assert choose_baseline((10, 100, 1000), None) == 100
    assert choose_baseline((2, 3), None) == 2
    with pytest.raises(ValueError):
        choose_baseline((2, 3), 100)


def test_ratios_come_from_the_numbers():
    records = [{"duration_s": 2.0, "kind": "video"}] * 4
    memory = TreeMemory(peak_rss_bytes=1000 * 2**20, peak_pss_bytes=800 * 2**20, peak_root_rss_bytes=300 * 2**20,
                        peak_processes=4, samples=10)  # fmt: skip
    small = size_result(4, records, {"wall_s": 10.0, "video_seconds": 8.0, "indexed": 4, "failed": 0,
                                     "windows_written": 4}, memory, 12.0)  # fmt: skip
    big_memory = TreeMemory(peak_rss_bytes=1100 * 2**20, peak_pss_bytes=900 * 2**20, peak_root_rss_bytes=320 * 2**20,
                            peak_processes=5, samples=20)  # fmt: skip
    big = size_result(8, records * 2, {"wall_s": 16.0, "video_seconds": 16.0, "indexed": 8, "failed": 0,
                                       "windows_written": 8}, big_memory, 18.0)  # fmt: skip
    assert small["video_s_per_wall_s"] == pytest.approx(0.8) and big["video_s_per_wall_s"] == pytest.approx(1.0)
    assert small["manifest_seconds"] == 8.0 and big["videos_per_min"] == pytest.approx(30.0)
    result = compare([small, big], 4, ScalingBenchConfig())
    assert result["throughput_ratio"] == pytest.approx(1.25) and result["rss_ratio"] == pytest.approx(1.1)
    # 1.25: faster at the larger size by more than 15 % -- fixed costs dominate the baseline; not linear
    assert result["checks"] == {"throughput": False, "rss": True, "no_failures": True} and not result["passed"]
    steady = dict(big, video_s_per_wall_s=0.9)
    assert compare([small, steady], 4, ScalingBenchConfig())["passed"]  # 1.125, within the band
    slow = dict(big, video_s_per_wall_s=0.6)
    assert not compare([small, slow], 4, ScalingBenchConfig())["checks"]["throughput"]  # 0.75 < 0.85


def test_sampler_sees_the_children_of_the_process():
    # A parent that starts a child holding ~60 MiB; the tree's peak RSS must include the child's.
    code = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', "
            "'import time; b = bytearray(60 * 2**20); time.sleep(1.5)']); c.wait()")
    process = subprocess.Popen([sys.executable, "-c", code])
    with ProcessTreeSampler(process.pid, interval_s=0.05) as sampler:
        process.wait()
    memory = sampler.memory
    assert memory.samples >= 3 and memory.peak_processes >= 2
    assert memory.peak_rss_bytes >= memory.peak_root_rss_bytes + 60 * 2**20
    assert 0 < memory.peak_pss_bytes <= memory.peak_rss_bytes


def test_corpora_are_cached_and_nested(tmp_path):
    cfg = ScalingBenchConfig(sizes=(1, 2), min_duration_s=1.0, max_duration_s=1.0, workdir=str(tmp_path), plot=None)
    first = ensure_corpora(cfg)
    directory, records = first[2]
    assert [len(first[size][1]) for size in (1, 2)] == [1, 2]
    assert first[1][1] == records[:1]  # the size-1 corpus is the first clip of the size-2 one
    pool_file = os.path.join(os.path.dirname(directory), "pool", records[0]["file"])
    assert os.path.samefile(pool_file, os.path.join(first[1][0], records[0]["file"]))  # a hard link, not a copy
    stamp = os.stat(pool_file).st_mtime_ns
    second = ensure_corpora(cfg)
    assert second == first and os.stat(pool_file).st_mtime_ns == stamp  # reused, not re-rendered


@pytest.mark.slow
def test_tiny_run_reports_consistent_numbers(tmp_path, capsys):
    """Sizes 2 and 3, tiny preset, 1 s clips: two real index jobs (about 25 s each on the 2-core machine)."""
    plot = tmp_path / "scaling.png"
    args = SimpleNamespace(sizes="2,3", min_duration=1.0, max_duration=1.0, preset="tiny", workers=None, workdir=str(tmp_path / "work"),
                           plot=str(plot), baseline_size=None, json=True)  # fmt: skip
    result = run_from_args(args)
    report = result.pop("report")
    json.dumps(result)  # JSON-able
    assert [r["size"] for r in result["results"]] == [2, 3]
    for r in result["results"]:
        assert r["videos"] == r["size"] and r["indexed"] == r["size"] and r["failed"] == 0
        assert r["video_seconds"] == pytest.approx(r["manifest_seconds"], abs=0.05 * r["videos"])
        assert r["video_s_per_wall_s"] == pytest.approx(r["video_seconds"] / r["wall_s"])
        assert r["videos_per_min"] == pytest.approx(60.0 * r["indexed"] / r["wall_s"])
        assert 0 < r["wall_s"] < r["process_wall_s"]
        assert r["peak_rss_mib"] > r["peak_driver_rss_mib"] > 0 and r["peak_processes"] >= 2  # driver + workers
    small, big = result["results"]
    comparison = result["comparison"]
    assert comparison["baseline_size"] == 2 and comparison["largest_size"] == 3
    assert comparison["throughput_ratio"] == pytest.approx(big["video_s_per_wall_s"] / small["video_s_per_wall_s"])
    assert comparison["rss_ratio"] == pytest.approx(big["peak_rss_mib"] / small["peak_rss_mib"])
    assert result["passed"] == all(comparison["checks"].values())
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and result["plot"] == str(plot)
    assert "3 vs 2 videos: throughput ratio" in report and report == format_report({**result, "report": None})
    assert not [p for p in (tmp_path / "work").iterdir() if p.name.startswith("run-")]  # scratch stores removed
